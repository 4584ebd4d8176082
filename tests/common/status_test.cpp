#include <doctest/doctest.h>

#include "common/status.h"

namespace llmctl {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Status::invalid_argument("value must be positive, got " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_both(int a, int b) {
  RETURN_IF_ERROR(parse_positive(a).status());
  RETURN_IF_ERROR(parse_positive(b).status().with_context("second"));
  return Status::ok();
}

TEST_CASE("Status carries code, message and context") {
  Status s = Status::not_found("config.json");
  CHECK_FALSE(s.is_ok());
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK(s.with_context("loading /m").message() == "loading /m: config.json");
  CHECK(s.to_string() == "NOT_FOUND: config.json");
  CHECK(Status::ok().to_string() == "OK");
  CHECK(Status::ok().with_context("x").is_ok());
}

TEST_CASE("Result and the macros propagate the first error") {
  CHECK(doubled(4).value() == 8);
  auto bad = doubled(-1);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message() == "value must be positive, got -1");
  CHECK(check_both(1, 2).is_ok());
  CHECK(check_both(1, 0).message() == "second: value must be positive, got 0");
  CHECK(check_both(0, 0).message() == "value must be positive, got 0");
}

}  // namespace
}  // namespace llmctl
