#include "runtime/logs/log_pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

namespace llmctl::logs {

struct LogPattern::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_data* data = nullptr;
  bool jit = false;
  ~Impl() {
    if (data) pcre2_match_data_free(data);
    if (code) pcre2_code_free(code);
  }
  int match(std::string_view text, size_t from) const {
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    if (jit) return pcre2_jit_match(code, subject, text.size(), from, 0, data, nullptr);
    return pcre2_match(code, subject, text.size(), from, 0, data, nullptr);
  }
};

Result<LogPattern> LogPattern::compile(std::string_view regex, bool ignore_case) {
  LogPattern p;
  if (regex.empty()) return p;
  auto impl = std::make_shared<Impl>();
  int error = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = PCRE2_MULTILINE | (ignore_case ? PCRE2_CASELESS : 0u);
  impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(), options, &error, &offset,
                             nullptr);
  if (!impl->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    return Status::invalid_argument(fmt::format("--grep '{}': {} at offset {}", regex,
                                                reinterpret_cast<const char*>(message), offset));
  }
  // Without JIT (e.g. a kernel that forbids executable memory) matching still works, slower.
  impl->jit = pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE) == 0;
  impl->data = pcre2_match_data_create_from_pattern(impl->code, nullptr);
  p.impl_ = std::move(impl);
  return p;
}

size_t LogPattern::find(std::string_view text, size_t from) const {
  if (!impl_) return from <= text.size() ? from : std::string_view::npos;
  if (from > text.size()) return std::string_view::npos;
  int rc = impl_->match(text, from);
  if (rc < 0) return std::string_view::npos;
  return pcre2_get_ovector_pointer(impl_->data)[0];
}

bool LogPattern::matches(std::string_view line) const {
  if (!impl_) return true;
  return impl_->match(line, 0) >= 0;
}

}  // namespace llmctl::logs
