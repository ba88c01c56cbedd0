// The greedy choice over a vocabulary's logits, fast enough to run once per token.
#pragma once

#include <cstddef>

namespace spool {

// Index of the first largest value of `v[0..n)` (what llama.cpp's greedy sampler picks); NaNs
// are never chosen; 0 when n == 0 or every value is NaN.
std::size_t first_argmax(const float* v, std::size_t n);

}  // namespace spool
