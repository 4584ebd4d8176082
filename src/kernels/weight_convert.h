// Host conversion of checkpoint weight elements (bf16, f16, fp32, little
// endian, any alignment) to fp32: what the CPU backend stores, and the
// reference the device uploads are checked against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace llmctl::kernels {

float bf16_bits_to_f32(std::uint16_t bits);
float f16_bits_to_f32(std::uint16_t bits);

// dst[i] = float(element i of src), for `count` elements of `dtype`.
void convert_weight_to_f32(WeightDtype dtype, const void* src, std::size_t count, float* dst);

}  // namespace llmctl::kernels
