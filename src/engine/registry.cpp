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

Status check_model_takes(const Model& m, const ChatRequest& req) {
  if (!req.output_format) return Ok{};
  if (!m.impl->follows_output_format()) {
    return make_error(Errc::invalid_request,
                      "model '" + m.name + "' (engine " + m.engine + ") cannot constrain output to a JSON schema");
  }
  if (auto ok = m.impl->check_output_format(*req.output_format); !ok) {
    return make_error(Errc::invalid_request, "model '" + m.name + "' (engine " + m.engine +
                                                 ") cannot follow this output format: " + ok.error().explanation);
  }
  return Ok{};
}

bool is_upstream_kind(std::string_view kind) { return kind == "openai" || kind == "anthropic"; }

Result<std::shared_ptr<Engine>> make_engine(const EngineSpec& spec,
                                            const boost::asio::any_io_executor& engine_executor) {
#ifdef SPOOL_WITH_LLAMA
  if (spec.kind == "llama") return std::shared_ptr<Engine>(std::make_shared<LlamaEngine>(spec.llama));
  constexpr std::string_view kAvailable = "mock, openai, anthropic, llama";
#else
  constexpr std::string_view kAvailable = "mock, openai, anthropic";
#endif
  if (is_upstream_kind(spec.kind)) {
    UpstreamProtocol protocol = spec.kind == "openai" ? openai_protocol() : anthropic_protocol();
    return std::shared_ptr<Engine>(
        std::make_shared<UpstreamEngine>(engine_executor, spec.upstream, std::move(protocol)));
  }
  if (spec.kind == "mock") return std::shared_ptr<Engine>(std::make_shared<MockEngine>(engine_executor, spec.mock));
  return make_error(
      Errc::invalid_request,
      "engine '" + spec.kind + "' is not available in this build yet (available: " + std::string(kAvailable) + ")");
}

}  // namespace spool
