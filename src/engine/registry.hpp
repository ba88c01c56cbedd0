// The models table: names → engines (§8), how a request's `model` picks one, and how a
// model's settings become its engine.
#pragma once

#include "engine/engine.hpp"
#include "engine/llama_engine.hpp"
#include "engine/mock_engine.hpp"
#include "engine/upstream_engine.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <string_view>
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

// Whether `m` can serve `req` as asked: invalid_request saying why when the request has an
// output format that model's engine cannot follow (SPEC §2: never plain text instead).
Status check_model_takes(const Model& m, const ChatRequest& req);

// How to build one model's engine: its kind and the settings of that kind.
struct EngineSpec {
  std::string kind;          // mock, llama, openai, anthropic
  MockOptions mock;          // kind mock
  LlamaOptions llama;        // kind llama
  UpstreamOptions upstream;  // kinds openai and anthropic
};

// Whether engines of `kind` stream from an upstream server (openai, anthropic: EngineSpec::upstream).
bool is_upstream_kind(std::string_view kind);

// The engine `spec` describes: mock and upstream engines work on `engine_executor`, llama on a
// thread of its own. invalid_request naming the kinds this build has when `spec.kind` is not one.
Result<std::shared_ptr<Engine>> make_engine(const EngineSpec& spec,
                                            const boost::asio::any_io_executor& engine_executor);

}  // namespace spool
