#include "stream/json_schema.hpp"

#include <string>

namespace spool {
namespace json = boost::json;

namespace {

// One JSON pointer segment with ~1 → '/' and ~0 → '~'.
std::string unescape_segment(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~' && i + 1 < s.size() && (s[i + 1] == '0' || s[i + 1] == '1')) {
      out.push_back(s[i + 1] == '0' ? '~' : '/');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The element of `v` a pointer segment names, or nullptr.
const json::value* step(const json::value& v, const std::string& seg) {
  if (v.is_object()) return v.as_object().if_contains(seg);
  if (!v.is_array() || seg.empty() || seg.size() > 9) return nullptr;
  std::size_t i = 0;
  for (char c : seg) {
    if (c < '0' || c > '9') return nullptr;
    i = i * 10 + static_cast<std::size_t>(c - '0');
  }
  return i < v.as_array().size() ? &v.as_array()[i] : nullptr;
}

}  // namespace

const json::value* resolve_local_ref(const json::value& root, std::string_view ref) {
  if (ref.empty() || ref.front() != '#') return nullptr;
  ref.remove_prefix(1);
  if (!ref.empty() && ref.front() != '/') return nullptr;
  const json::value* v = &root;
  while (!ref.empty() && v != nullptr) {
    ref.remove_prefix(1);  // the '/'
    const std::size_t end = ref.find('/');
    v = step(*v, unescape_segment(ref.substr(0, end)));
    ref = end == std::string_view::npos ? std::string_view{} : ref.substr(end);
  }
  if (v == nullptr || !(v->is_object() || v->is_bool())) return nullptr;
  return v;
}

}  // namespace spool
