#include "web/static_assets.hpp"

#include <string>

namespace spool::web {

const StaticAsset* find_static_asset(std::span<const std::string> segments) {
  if (segments.size() > 1) return nullptr;
  const std::string_view name = segments.empty() ? std::string_view("index.html") : std::string_view(segments[0]);
  for (const StaticAsset& a : embedded_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace spool::web
