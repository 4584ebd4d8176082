// Backend::upload_weight on CUDA (checkpoint bf16 / f16 / fp32 host bytes to
// bf16 device weights through the pinned staging ring) against the CPU
// backend's conversion, and the bf16 embedding table against the CPU's fp32
// one.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/weight_convert.h"

namespace llmctl::kernels::test {
namespace {

constexpr uint16_t kGuardBits = 0xbadbu;
constexpr std::size_t kGuardElements = 512;

// count bf16 elements on the device with guard elements on both sides.
struct Bf16Array {
  Backend& gpu;
  std::size_t count;
  std::unique_ptr<DeviceBuffer> buf;
  Bf16Array(Backend& g, std::size_t n) : gpu(g), count(n) {
    auto made = gpu.allocate((n + 2 * kGuardElements) * sizeof(uint16_t));
    REQUIRE(made.is_ok());
    buf = std::move(made).value();
    std::vector<uint16_t> fill(n + 2 * kGuardElements, kGuardBits);
    gpu.copy_to_device(buf->data(), fill.data(), fill.size() * sizeof(uint16_t));
  }
  void* data() const { return static_cast<uint16_t*>(buf->data()) + kGuardElements; }
  // The interior; fails the test when a guard changed.
  std::vector<uint16_t> download() const {
    gpu.synchronize();
    std::vector<uint16_t> host(count + 2 * kGuardElements);
    gpu.copy_to_host(host.data(), buf->data(), host.size() * sizeof(uint16_t));
    std::size_t bad = 0;
    for (std::size_t i = 0; i < kGuardElements; ++i) {
      bad += host[i] != kGuardBits;
      bad += host[count + kGuardElements + i] != kGuardBits;
    }
    CHECK_MESSAGE(bad == 0, bad << " guard elements overwritten");
    return {host.begin() + static_cast<std::ptrdiff_t>(kGuardElements),
            host.begin() + static_cast<std::ptrdiff_t>(kGuardElements + count)};
  }
};

// count random elements of dtype as host bytes, starting one byte into the
// vector (a mapped checkpoint's tensors need not be aligned).
std::vector<unsigned char> random_weight_bytes(std::mt19937& rng, WeightDtype dtype, std::size_t count) {
  const std::size_t element = weight_dtype_size_bytes(dtype);
  std::vector<unsigned char> bytes(1 + count * element);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  std::uniform_int_distribution<uint32_t> f16_bits(0, 0x7bffu);  // finite f16, both signs below
  for (std::size_t i = 0; i < count; ++i) {
    unsigned char* at = bytes.data() + 1 + i * element;
    if (dtype == WeightDtype::kF32) {
      const float v = dist(rng);
      std::memcpy(at, &v, 4);
    } else if (dtype == WeightDtype::kBF16) {
      const uint16_t v = bf16_bits_of(dist(rng));
      std::memcpy(at, &v, 2);
    } else {
      const auto v = static_cast<uint16_t>(f16_bits(rng) | (i % 3 == 0 ? 0x8000u : 0u));
      std::memcpy(at, &v, 2);
    }
  }
  return bytes;
}

// The CPU backend's conversion to fp32, rounded to bf16 on the host.
std::vector<uint16_t> expected_bits(Backend& cpu, WeightDtype dtype, const unsigned char* src, std::size_t count) {
  std::vector<float> f32(count);
  cpu.upload_weight(f32.data(), src, dtype, count);
  std::vector<uint16_t> out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = bf16_bits_of(f32[i]);
  return out;
}

const char* name_of(WeightDtype dtype) {
  return dtype == WeightDtype::kF32 ? "F32" : dtype == WeightDtype::kBF16 ? "BF16" : "F16";
}

TEST_CASE("cuda upload_weight stores bf16, f16 and f32 checkpoint bytes as the cpu's conversion rounded to bf16") {
  Backends b;
  REQUIRE(b.gpu->weight_dtype() == WeightDtype::kBF16);
  std::mt19937 rng(71);
  for (const WeightDtype dtype : {WeightDtype::kBF16, WeightDtype::kF16, WeightDtype::kF32}) {
    // Small, one element, and enough for more chunks than the staging ring
    // has slots (32 MiB each: 16 Mi half elements, 8 Mi floats).
    const std::size_t big = dtype == WeightDtype::kF32 ? (std::size_t{37} << 20) + 3 : (std::size_t{70} << 20) + 5;
    for (const std::size_t count : {std::size_t{1001}, std::size_t{1}, big}) {
      CAPTURE(name_of(dtype));
      CAPTURE(count);
      auto src = random_weight_bytes(rng, dtype, count);
      const auto want = expected_bits(*b.cpu, dtype, src.data() + 1, count);
      Bf16Array dst(*b.gpu, count);
      b.gpu->upload_weight(dst.data(), src.data() + 1, dtype, count);
      // The host bytes are read by the time upload_weight returns.
      std::fill(src.begin(), src.end(), static_cast<unsigned char>(0x7f));
      const auto got = dst.download();
      std::size_t mismatches = 0, first = count;
      for (std::size_t i = 0; i < count; ++i) {
        if (got[i] != want[i]) {
          ++mismatches;
          if (first == count) first = i;
        }
      }
      CHECK_MESSAGE(mismatches == 0, mismatches << " elements differ, the first at " << first);
    }
  }
}

TEST_CASE("cuda upload_weight calls back to back keep each weight's bytes (the staging ring is reused)") {
  Backends b;
  std::mt19937 rng(72);
  const std::size_t count = (std::size_t{20} << 20) + 77;  // a chunk and a part, per call
  std::vector<std::vector<unsigned char>> srcs;
  std::vector<std::vector<uint16_t>> wants;
  std::vector<std::unique_ptr<Bf16Array>> dsts;
  for (int i = 0; i < 4; ++i) {
    const WeightDtype dtype = i % 2 ? WeightDtype::kF32 : WeightDtype::kBF16;
    srcs.push_back(random_weight_bytes(rng, dtype, count));
    wants.push_back(expected_bits(*b.cpu, dtype, srcs.back().data() + 1, count));
    dsts.push_back(std::make_unique<Bf16Array>(*b.gpu, count));
    b.gpu->upload_weight(dsts.back()->data(), srcs.back().data() + 1, dtype, count);
  }
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(dsts[static_cast<std::size_t>(i)]->download() == wants[static_cast<std::size_t>(i)]);
  }
}

TEST_CASE("cuda embedding reads the bf16 table as the cpu reads its fp32 conversion") {
  Backends b;
  std::mt19937 rng(73);
  const int64_t vocab = 1000, hidden = 301, tokens = 37;
  const auto n = static_cast<std::size_t>(vocab * hidden);
  const auto table = random_weight_bytes(rng, WeightDtype::kBF16, n);
  auto ids = random_ints(rng, tokens, 0, static_cast<int32_t>(vocab - 1));
  ids[0] = 0;
  ids[1] = static_cast<int32_t>(vocab - 1);

  auto cpu_table = b.cpu->allocate(n * sizeof(float));
  REQUIRE(cpu_table.is_ok());
  b.cpu->upload_weight((*cpu_table)->data(), table.data() + 1, WeightDtype::kBF16, n);
  std::vector<float> want(static_cast<std::size_t>(tokens * hidden));
  b.cpu->embedding(want.data(), ids.data(), (*cpu_table)->data(), tokens, hidden);

  Bf16Array d_table(*b.gpu, n);
  b.gpu->upload_weight(d_table.data(), table.data() + 1, WeightDtype::kBF16, n);
  GuardedArray<float> d_out(*b.gpu, tokens * hidden);
  GuardedArray<int32_t> d_ids(*b.gpu, tokens, &ids);
  b.gpu->embedding(d_out.data(), d_ids.data(), d_table.data(), tokens, hidden);
  CHECK(d_out.download() == want);
  d_table.download();  // guards intact
}

}  // namespace
}  // namespace llmctl::kernels::test
