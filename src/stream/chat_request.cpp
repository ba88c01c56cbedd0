#include "stream/chat_request.hpp"

namespace spool {

std::string message_text(const ChatMessage& m) {
  std::string out;
  bool first = true;
  for (const auto& b : m.content) {
    if (b.type != "text") continue;
    if (!first) out.push_back('\n');
    out += b.text;
    first = false;
  }
  return out;
}

void put_sampling(const ChatRequest& req, SamplingSet set, boost::json::object& body) {
  if (req.temperature) body["temperature"] = *req.temperature;
  if (req.top_p) body["top_p"] = *req.top_p;
  if (req.top_k) body["top_k"] = *req.top_k;
  if (set == SamplingSet::anthropic) return;
  if (req.min_p) body["min_p"] = *req.min_p;
  if (req.repetition_penalty) body["repetition_penalty"] = *req.repetition_penalty;
  if (req.presence_penalty) body["presence_penalty"] = *req.presence_penalty;
  if (req.frequency_penalty) body["frequency_penalty"] = *req.frequency_penalty;
  if (req.seed) body["seed"] = *req.seed;
}

}  // namespace spool
