#include "runtime/control/gpu_indices.h"

#include <doctest/doctest.h>

using namespace llmctl;
using namespace llmctl::control;

TEST_CASE("pick_gpu_indices takes the lowest free indices, refuses fractions and says what is held") {
  CHECK(*pick_gpu_indices(4, {}, 2) == std::vector<int>{0, 1});
  CHECK(*pick_gpu_indices(4, {0, 2}, 2) == std::vector<int>{1, 3});
  CHECK(pick_gpu_indices(4, {0, 1, 2, 3}, 0)->empty());
  auto none = pick_gpu_indices(2, {0, 1}, 1);
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().code() == StatusCode::kUnavailable);
  CHECK(none.status().message().find("held: 0,1") != std::string::npos);
  auto half = pick_gpu_indices(2, {}, 0.5);
  REQUIRE_FALSE(half.is_ok());
  CHECK(half.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("cuda_visible_devices maps indices through the agent's own CUDA_VISIBLE_DEVICES") {
  CHECK(*cuda_visible_devices({0, 1}, std::nullopt) == "0,1");
  CHECK(*cuda_visible_devices({1}, std::string("2,3")) == "3");
  CHECK(*cuda_visible_devices({0}, std::string("GPU-aa,GPU-bb")) == "GPU-aa");
  auto past = cuda_visible_devices({1}, std::string("5"));
  REQUIRE_FALSE(past.is_ok());
  CHECK(past.status().message().find("CUDA_VISIBLE_DEVICES=\"5\"") != std::string::npos);
  CHECK_FALSE(cuda_visible_devices({0}, std::string("")).is_ok());
}
