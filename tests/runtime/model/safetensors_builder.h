// Builds safetensors files byte by byte for tests, including broken ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace llmctl::model::testing {

// 8-byte little-endian length + header text + data, exactly as given (no checks:
// tests use it to write lying headers).
inline std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

// A well-formed file from (name, shape, fp32 values), written in order.
struct F32Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// The 16-bit pattern of v in "BF16" or "F16", for values exactly
// representable there (normal numbers and zero; tests pick such values), so
// the expected bits do not depend on the converter under test.
inline uint16_t half_bits(float v, const std::string& dtype) {
  uint32_t f;
  std::memcpy(&f, &v, 4);
  if (dtype == "BF16") return static_cast<uint16_t>(f >> 16);
  const uint32_t sign = (f >> 16) & 0x8000u;
  if ((f & 0x7fffffffu) == 0) return static_cast<uint16_t>(sign);
  const int exponent = static_cast<int>((f >> 23) & 0xffu) - 127 + 15;
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) | ((f >> 13) & 0x3ffu));
}

// The tensors as a safetensors file, every one stored as dtype ("F32",
// "BF16", "F16"; 16-bit values must be exactly representable, see half_bits).
inline std::string typed_safetensors(const std::vector<F32Tensor>& tensors, const std::string& dtype) {
  std::string header = "{", data;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    std::string shape;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      if (d) shape += ',';
      shape += std::to_string(t.shape[d]);
    }
    const std::size_t begin = data.size();
    for (float v : t.values) {
      if (dtype == "F32") {
        data.append(reinterpret_cast<const char*>(&v), 4);
      } else {
        const uint16_t bits = half_bits(v, dtype);
        data.push_back(static_cast<char>(bits & 0xff));
        data.push_back(static_cast<char>(bits >> 8));
      }
    }
    if (i) header += ',';
    header += "\"" + t.name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[";
    header += std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  return safetensors_bytes(header, data);
}

inline std::string f32_safetensors(const std::vector<F32Tensor>& tensors) { return typed_safetensors(tensors, "F32"); }

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace llmctl::model::testing
