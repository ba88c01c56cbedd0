#include "web/static_assets.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace spool::web {
namespace {

std::string read_source_file(const std::string& name) {
  std::ifstream in(std::string(SPOOL_SOURCE_DIR) + "/web/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(StaticAssets, RootIsTheIndexPage) {
  const StaticAsset* a = find_static_asset(std::vector<std::string>{});
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "index.html");
  EXPECT_EQ(a->content_type, "text/html; charset=utf-8");
  EXPECT_NE(a->body.find("<title>Spool playground</title>"), std::string_view::npos);
}

TEST(StaticAssets, EveryFileIsEmbeddedByteForByteWithItsType) {
  ASSERT_GE(embedded_assets().size(), 5U);
  for (const StaticAsset& a : embedded_assets()) {
    EXPECT_EQ(a.body, read_source_file(std::string(a.name))) << a.name;
    ASSERT_GE(a.etag.size(), 3U);
    EXPECT_EQ(a.etag.front(), '"');
    EXPECT_EQ(a.etag.back(), '"');
    const std::vector<std::string> path{std::string(a.name)};
    EXPECT_EQ(find_static_asset(path), &a);
  }
  const std::vector<std::string> js{"app.js"};
  ASSERT_NE(find_static_asset(js), nullptr);
  EXPECT_EQ(find_static_asset(js)->content_type, "text/javascript; charset=utf-8");
}

TEST(StaticAssets, OnlyTopLevelFileNamesMatch) {
  EXPECT_EQ(find_static_asset(std::vector<std::string>{"nope.js"}), nullptr);
  EXPECT_EQ(find_static_asset(std::vector<std::string>{"web", "app.js"}), nullptr);
  EXPECT_EQ(find_static_asset(std::vector<std::string>{"..", "app.js"}), nullptr);
  EXPECT_EQ(find_static_asset(std::vector<std::string>{"v1"}), nullptr);
  EXPECT_EQ(find_static_asset(std::vector<std::string>{""}), nullptr);
}

}  // namespace
}  // namespace spool::web
