// The models table: names → engines (§8), and how a request's `model` picks one.
#pragma once

#include "engine/engine.hpp"

#include <memory>
#include <string>
#include <vector>

namespace spool {

// One configured model.
struct Model {
  std::string name;
  std::string engine;  // mock, llama, openai, anthropic
  std::shared_ptr<Engine> impl;
};

// Configured models; the first added is the default unless set_default() names another.
class ModelRegistry {
 public:
  void add(Model m);
  // Makes `name` the default; false if no such model.
  bool set_default(const std::string& name);
  // The model `requested` names: "default", empty and unknown `claude-*` names give the
  // default; any other unknown name is invalid_request naming the available ones.
  Result<const Model*> resolve(std::string_view requested) const;
  const std::vector<Model>& models() const { return models_; }
  const Model* default_model() const { return models_.empty() ? nullptr : &models_[default_]; }

 private:
  std::vector<Model> models_;
  std::size_t default_ = 0;
};

}  // namespace spool
