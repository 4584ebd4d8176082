// The CUDA backend's memory contract and the --device choice.
#include <doctest/doctest.h>

#include "cuda_test_util.h"
#include "kernels/backend_factory.h"

namespace llmctl::kernels::test {
namespace {

TEST_CASE("cuda allocate returns zeroed memory and reports an impossible size as UNAVAILABLE") {
  Backends b;
  auto buf = b.gpu->allocate(1000 * sizeof(float));
  REQUIRE(buf.is_ok());
  std::vector<float> host(1000, 1.0f);
  b.gpu->copy_to_host(host.data(), (*buf)->data(), host.size() * sizeof(float));
  CHECK(std::all_of(host.begin(), host.end(), [](float f) { return f == 0.0f; }));

  auto huge = b.gpu->allocate(std::size_t{1} << 52);  // 4 PiB
  REQUIRE_FALSE(huge.is_ok());
  CHECK(huge.status().code() == StatusCode::kUnavailable);
  CHECK(huge.status().to_string().find("cannot allocate") != std::string::npos);

  // The failure left the backend usable.
  std::mt19937 rng(41);
  const auto x = random_floats(rng, 100);
  GuardedArray<float> d_x(*b.gpu, 100, &x);
  CHECK(d_x.download() == x);
}

TEST_CASE("a captured CudaGraph replays its ops on whatever the inputs hold at replay time") {
  Backends b;
  std::mt19937 rng(43);
  const int64_t rows = 3, n = 500;
  const auto weight = random_floats(rng, n);
  GuardedArray<float> d_x(*b.gpu, rows * n, nullptr), d_w(*b.gpu, n, &weight), d_out(*b.gpu, rows * n);
  REQUIRE(CudaGraph::begin_capture(*b.gpu).is_ok());
  b.gpu->rms_norm(d_out.data(), d_x.data(), d_w.data(), rows, n, 1e-5f);
  auto graph = CudaGraph::end_capture(*b.gpu);
  REQUIRE_MESSAGE(graph.is_ok(), graph.status().to_string());
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    const auto x = random_floats(rng, rows * n);
    b.gpu->copy_to_device(d_x.data(), x.data(), x.size() * sizeof(float));
    (*graph)->replay();
    std::vector<float> want(x.size());
    b.cpu->rms_norm(want.data(), x.data(), weight.data(), rows, n, 1e-5f);
    check_close(d_out.download(), want, 1e-6, 1e-5, "rms_norm replayed");
  }
  auto not_cuda = CudaGraph::begin_capture(*b.cpu);
  CHECK(not_cuda.code() == StatusCode::kInvalidArgument);
}

TEST_CASE("make_backend picks cuda for cuda and auto on a GPU host, and rejects other names") {
  auto cuda = make_backend("cuda");
  REQUIRE(cuda.is_ok());
  CHECK((*cuda)->name() == "cuda");
  auto autod = make_backend("auto");
  REQUIRE(autod.is_ok());
  CHECK((*autod)->name() == "cuda");
  auto cpu = make_backend("cpu", 1);
  REQUIRE(cpu.is_ok());
  CHECK((*cpu)->name() == "cpu");
  auto missing = make_backend("cuda:4096");
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == StatusCode::kUnavailable);
  auto bogus = make_backend("tpu");
  REQUIRE_FALSE(bogus.is_ok());
  CHECK(bogus.status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace llmctl::kernels::test
