#include "runtime/model/dtype.h"

#include "kernels/weight_convert.h"

namespace llmctl::model {

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "F64") return DType::kF64;
  if (name == "I64") return DType::kI64;
  if (name == "I32") return DType::kI32;
  if (name == "I16") return DType::kI16;
  if (name == "I8") return DType::kI8;
  if (name == "U8") return DType::kU8;
  if (name == "BOOL") return DType::kBool;
  return std::nullopt;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
  }
  return "?";
}

std::size_t dtype_size_bytes(DType dtype) {
  switch (dtype) {
    case DType::kF64: case DType::kI64: return 8;
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: case DType::kI16: return 2;
    case DType::kI8: case DType::kU8: case DType::kBool: return 1;
  }
  return 1;
}

bool dtype_is_float_weight(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

kernels::WeightDtype weight_dtype_of(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return kernels::WeightDtype::kBF16;
    case DType::kF16: return kernels::WeightDtype::kF16;
    default: return kernels::WeightDtype::kF32;
  }
}

float bf16_to_f32(std::uint16_t bits) { return kernels::bf16_bits_to_f32(bits); }

float f16_to_f32(std::uint16_t bits) { return kernels::f16_bits_to_f32(bits); }

void convert_to_f32(DType dtype, const std::byte* src, std::size_t count, float* dst) {
  if (!dtype_is_float_weight(dtype)) return;
  kernels::convert_weight_to_f32(weight_dtype_of(dtype), src, count, dst);
}

}  // namespace llmctl::model
