#include "engine/argmax.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace spool {
namespace {

TEST(FirstArgmax, MatchesMaxElementOnRandomVectorsOfEveryTailLength) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d;
  for (std::size_t n = 1; n < 70; ++n) {
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    EXPECT_EQ(first_argmax(v.data(), n), static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin()))
        << "n=" << n;
  }
}

TEST(FirstArgmax, TakesTheFirstOfEqualMaximaAndSkipsNaN) {
  const std::vector<float> v{1, 5, 2, 5, 0, 0, 0, 0, 0, 5, 3};
  EXPECT_EQ(first_argmax(v.data(), v.size()), 1u);
  const std::vector<float> w{NAN, -3, NAN, -1, -2, NAN, NAN, NAN, NAN, -7};
  EXPECT_EQ(first_argmax(w.data(), w.size()), 3u);
  const std::vector<float> big(32064, -1.0f);
  auto b = big;
  b[32063] = 0;
  EXPECT_EQ(first_argmax(b.data(), b.size()), 32063u);
}

TEST(FirstArgmax, EmptyOrAllNaNIsZero) {
  EXPECT_EQ(first_argmax(nullptr, 0), 0u);
  const std::vector<float> v(9, NAN);
  EXPECT_EQ(first_argmax(v.data(), v.size()), 0u);
}

}  // namespace
}  // namespace spool
