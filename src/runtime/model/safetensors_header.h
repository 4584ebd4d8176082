// The header of a safetensors file, parsed and checked against the file size.
// Layout: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {...}}, then the data section; offsets are relative to it.
// Pure function of its input (the fuzz target drives it directly).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "runtime/model/dtype.h"

namespace llmctl::model {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets within the data section, [begin, end)
  uint64_t end = 0;
  uint64_t num_elements() const;
};

struct SafetensorsHeader {
  uint64_t data_offset = 0;  // 8 + N: where the data section starts in the file
  std::vector<TensorInfo> tensors;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
};

// Largest header accepted (the format's reference implementation uses 100 MB).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// `prefix` holds at least the first 8 + N bytes of the file (more is fine);
// `file_size` is the whole file's size. Checks: N fits in the file, the JSON is
// an object of well-formed entries, known dtypes, non-negative dims, no
// overflow, end - begin == elements * dtype size, every range inside the data
// section, no two ranges overlapping. Errors name the tensor.
Result<SafetensorsHeader> parse_safetensors_header(std::string_view prefix, uint64_t file_size);

}  // namespace llmctl::model
