// Element types found in safetensors files, and their conversion to fp32 (the
// CPU backend computes in fp32 only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/kernels.h"

namespace llmctl::model {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32" -> kF32 ...; nullopt for names safetensors does not define.
std::optional<DType> dtype_from_safetensors_name(std::string_view name);
std::string_view dtype_name(DType dtype);
std::size_t dtype_size_bytes(DType dtype);
// Whether weights of this type can be converted to fp32 (F32, F16, BF16).
bool dtype_is_float_weight(DType dtype);

// Converts `count` little-endian elements of `dtype` at `src` (any alignment)
// to fp32 at `dst`. Precondition: dtype_is_float_weight(dtype).
void convert_to_f32(DType dtype, const std::byte* src, std::size_t count, float* dst);

// The backend's name for a float weight type (kF32 for the others).
kernels::WeightDtype weight_dtype_of(DType dtype);

float bf16_to_f32(std::uint16_t bits);
float f16_to_f32(std::uint16_t bits);

}  // namespace llmctl::model
