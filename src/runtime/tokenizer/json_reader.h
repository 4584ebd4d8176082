// JsonReader: typed access to a parsed JSON value that reports errors as a
// Status naming the file and the JSON path ("tokenizer.json: model.merges[3]:
// expected a string"), so a malformed tokenizer.json never throws or crashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::tokenizer {

class JsonReader {
 public:
  JsonReader(const nlohmann::json& value, std::string file, std::string path)
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& value() const { return *value_; }
  const std::string& path() const { return path_; }
  bool is_null() const { return value_->is_null(); }
  bool is_object() const { return value_->is_object(); }
  bool is_array() const { return value_->is_array(); }
  bool is_string() const { return value_->is_string(); }
  bool has(std::string_view key) const {
    return value_->is_object() && value_->find(key) != value_->end() && !(*value_)[std::string(key)].is_null();
  }

  Status error(std::string_view what) const {
    return Status::invalid_argument(file_ + ": " + (path_.empty() ? std::string("(root)") : path_) + ": " +
                                    std::string(what));
  }

  // A member (null JSON when absent; check with has()).
  JsonReader operator[](std::string_view key) const {
    static const nlohmann::json kNull;
    std::string p = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    if (!value_->is_object()) return JsonReader(kNull, file_, std::move(p));
    auto it = value_->find(key);
    return JsonReader(it == value_->end() ? kNull : *it, file_, std::move(p));
  }
  // Element `index` (null JSON when not an array or out of range).
  JsonReader at(size_t index) const {
    static const nlohmann::json kNull;
    std::string p = path_ + "[" + std::to_string(index) + "]";
    if (!value_->is_array() || index >= value_->size()) return JsonReader(kNull, file_, std::move(p));
    return JsonReader((*value_)[index], file_, std::move(p));
  }
  size_t size() const { return value_->size(); }

  Result<std::string> get_string() const {
    if (!value_->is_string()) return error("expected a string");
    return value_->get_ref<const std::string&>();
  }
  Result<int64_t> get_int() const {
    if (!value_->is_number_integer()) return error("expected an integer");
    return value_->get<int64_t>();
  }
  Result<bool> get_bool() const {
    if (!value_->is_boolean()) return error("expected true or false");
    return value_->get<bool>();
  }
  // Optional members: the fallback when absent or null.
  Result<std::string> string_or(std::string_view key, std::string fallback) const {
    if (!has(key)) return fallback;
    return (*this)[key].get_string();
  }
  Result<bool> bool_or(std::string_view key, bool fallback) const {
    if (!has(key)) return fallback;
    return (*this)[key].get_bool();
  }
  Result<int64_t> int_or(std::string_view key, int64_t fallback) const {
    if (!has(key)) return fallback;
    return (*this)[key].get_int();
  }
  Status expect_object() const { return is_object() ? Status::ok() : error("expected an object"); }
  Status expect_array() const { return is_array() ? Status::ok() : error("expected an array"); }

 private:
  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

}  // namespace llmctl::tokenizer
