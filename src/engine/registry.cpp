#include "engine/registry.hpp"

namespace spool {

void ModelRegistry::add(Model m) { models_.push_back(std::move(m)); }

bool ModelRegistry::set_default(const std::string& name) {
  for (std::size_t i = 0; i < models_.size(); ++i) {
    if (models_[i].name == name) {
      default_ = i;
      return true;
    }
  }
  return false;
}

Result<const Model*> ModelRegistry::resolve(std::string_view requested) const {
  for (const auto& m : models_) {
    if (m.name == requested) return &m;
  }
  if (models_.empty()) return make_error(Errc::internal, "No models are configured");
  if (requested.empty() || requested == "default" || requested.starts_with("claude-")) return &models_[default_];
  std::string names;
  for (const auto& m : models_) {
    if (!names.empty()) names += ", ";
    names += m.name;
  }
  return make_error(Errc::invalid_request,
                    "Unknown model '" + std::string(requested) + "'; available models: " + names + " (or 'default')");
}

}  // namespace spool
