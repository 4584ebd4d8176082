#include "runtime/model/safetensors_header.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

namespace llmctl::model {
namespace {

using json = nlohmann::json;

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Status parse_entry(const std::string& name, const json& v, uint64_t data_size, TensorInfo* t) {
  t->name = name;
  if (!v.is_object()) return Status::invalid_argument(name + ": header entry must be an object");
  auto dtype = v.find("dtype");
  if (dtype == v.end() || !dtype->is_string()) return Status::invalid_argument(name + ": missing \"dtype\"");
  auto dt = dtype_from_safetensors_name(dtype->get<std::string>());
  if (!dt) return Status::invalid_argument(name + ": unknown dtype \"" + dtype->get<std::string>() + "\"");
  t->dtype = *dt;
  auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array()) return Status::invalid_argument(name + ": missing \"shape\"");
  uint64_t elements = 1;
  bool overflow = false;
  for (const auto& d : *shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return Status::invalid_argument(name + ": shape must hold non-negative integers, got " + shape->dump());
    }
    const auto dim = static_cast<uint64_t>(d.get<int64_t>());
    if (dim != 0 && elements > UINT64_MAX / dim) overflow = true;
    elements *= dim;
    t->shape.push_back(d.get<int64_t>());
  }
  const uint64_t elem_size = dtype_size_bytes(t->dtype);
  if (overflow || elements > UINT64_MAX / elem_size) {
    return Status::invalid_argument(name + ": shape " + shape_string(t->shape) + " is too large");
  }
  auto offsets = v.find("data_offsets");
  if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    // nlohmann reports non-negative integer literals as unsigned.
    return Status::invalid_argument(name + ": \"data_offsets\" must be [begin, end] with non-negative integers");
  }
  t->begin = (*offsets)[0].get<uint64_t>();
  t->end = (*offsets)[1].get<uint64_t>();
  if (t->begin > t->end) {
    return Status::invalid_argument(name + ": data_offsets [" + std::to_string(t->begin) + "," +
                                    std::to_string(t->end) + "] are reversed");
  }
  if (t->end > data_size) {
    return Status::invalid_argument(name + ": data_offsets end " + std::to_string(t->end) +
                                    " is past the end of the data section (" + std::to_string(data_size) +
                                    " bytes; file truncated?)");
  }
  if (t->end - t->begin != elements * elem_size) {
    return Status::invalid_argument(name + ": " + std::string(dtype_name(t->dtype)) + " shape " +
                                    shape_string(t->shape) + " needs " + std::to_string(elements * elem_size) +
                                    " bytes but data_offsets span " + std::to_string(t->end - t->begin));
  }
  return Status::ok();
}

}  // namespace

uint64_t TensorInfo::num_elements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

Result<SafetensorsHeader> parse_safetensors_header(std::string_view prefix, uint64_t file_size) {
  if (file_size < 8 || prefix.size() < 8) {
    return Status::invalid_argument("file is " + std::to_string(file_size) +
                                    " bytes, too short for a safetensors header");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(prefix[i]);
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return Status::invalid_argument("header length " + std::to_string(header_len) + " exceeds the " +
                                    std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit");
  }
  if (header_len > file_size - 8) {
    return Status::invalid_argument("header length " + std::to_string(header_len) + " is past the end of the " +
                                    std::to_string(file_size) + "-byte file (truncated?)");
  }
  if (prefix.size() < 8 + header_len) return Status::internal("safetensors header prefix shorter than the header");
  json j = json::parse(prefix.substr(8, header_len), nullptr, false);
  if (j.is_discarded()) return Status::invalid_argument("header is not valid JSON");
  if (!j.is_object()) return Status::invalid_argument("header must be a JSON object");

  SafetensorsHeader header;
  header.data_offset = 8 + header_len;
  const uint64_t data_size = file_size - header.data_offset;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return Status::invalid_argument("__metadata__ must be an object");
      for (const auto& [mk, mv] : value.items()) {
        if (mv.is_string()) header.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    TensorInfo t;
    RETURN_IF_ERROR(parse_entry(key, value, data_size, &t));
    header.tensors.push_back(std::move(t));
  }
  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by begin, a range overlaps an earlier one iff it starts before the
  // furthest end seen so far. Empty tensors occupy no bytes and overlap nothing.
  const TensorInfo* furthest = nullptr;
  for (const TensorInfo& cur : header.tensors) {
    if (cur.end == cur.begin) continue;
    if (furthest != nullptr && cur.begin < furthest->end) {
      return Status::invalid_argument(cur.name + ": data_offsets [" + std::to_string(cur.begin) + "," +
                                      std::to_string(cur.end) + "] overlap " + furthest->name + " [" +
                                      std::to_string(furthest->begin) + "," + std::to_string(furthest->end) + "]");
    }
    if (furthest == nullptr || cur.end > furthest->end) furthest = &cur;
  }
  return header;
}

}  // namespace llmctl::model
