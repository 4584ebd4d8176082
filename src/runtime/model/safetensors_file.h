// One safetensors file, memory-mapped read-only, with its checked header.
// Tensor bytes are read straight from the mapping; a SafetensorsFile is
// movable, not copyable, and immutable after open (safe to read from any thread).
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "runtime/model/safetensors_header.h"

namespace llmctl::model {

class SafetensorsFile {
 public:
  // Maps `path` and parses its header; errors are prefixed with the path.
  static Result<SafetensorsFile> open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  // nullptr when the file has no tensor of that name.
  const TensorInfo* find(const std::string& name) const;
  // The tensor's bytes inside the mapping ((end - begin) bytes).
  const std::byte* data(const TensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  void unmap();

  std::string path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  SafetensorsHeader header_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> header_.tensors position
};

}  // namespace llmctl::model
