// Helpers for comparing CUDA ops with their CPU twins: seeded random inputs,
// device arrays with guard regions on both sides (filled with a sentinel bit
// pattern, checked after each op), and per-op tolerances.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda_backend.h"
#include "kernels/kernels.h"

namespace llmctl::kernels::test {

// Elements of guard on each side of every device array.
inline constexpr int64_t kGuard = 256;
// A NaN payload no op produces: an output element still holding it was not written.
inline constexpr uint32_t kSentinelBits = 0x7fbadbadu;

inline float sentinel() {
  float f;
  std::memcpy(&f, &kSentinelBits, sizeof f);
  return f;
}

inline bool is_sentinel(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits == kSentinelBits;
}

inline bool is_sentinel(int32_t v) { return static_cast<uint32_t>(v) == kSentinelBits; }

// bf16 elements (the CUDA KV cache) as their bits: the sentinel's upper
// half, also a NaN payload no op produces.
inline constexpr uint16_t kSentinelBf16Bits = static_cast<uint16_t>(kSentinelBits >> 16);
inline bool is_sentinel(uint16_t v) { return v == kSentinelBf16Bits; }

template <typename T>
T sentinel_of() {
  if constexpr (std::is_same_v<T, float>) {
    return sentinel();
  } else if constexpr (std::is_same_v<T, uint16_t>) {
    return kSentinelBf16Bits;
  } else {
    return static_cast<T>(kSentinelBits);
  }
}

struct Backends {
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  std::unique_ptr<Backend> gpu;
  Backends() {
    auto made = make_cuda_backend(0);
    REQUIRE_MESSAGE(made.is_ok(), "the gpu tests need a CUDA device: " << made.status().to_string());
    gpu = std::move(made).value();
  }
};

// n elements of T on the GPU with kGuard sentinel elements on each side.
template <typename T>
class GuardedArray {
 public:
  // Contents: `init` when given (size n), else the sentinel (an output).
  GuardedArray(Backend& gpu, int64_t n, const std::vector<T>* init = nullptr) : gpu_(gpu), n_(n) {
    auto buf = gpu.allocate(static_cast<std::size_t>(n + 2 * kGuard) * sizeof(T));
    REQUIRE(buf.is_ok());
    buf_ = std::move(buf).value();
    std::vector<T> host(static_cast<std::size_t>(n + 2 * kGuard), sentinel_of<T>());
    if (init != nullptr) {
      REQUIRE(static_cast<int64_t>(init->size()) == n);
      std::copy(init->begin(), init->end(), host.begin() + kGuard);
    }
    gpu.copy_to_device(buf_->data(), host.data(), host.size() * sizeof(T));
  }
  T* data() { return static_cast<T*>(buf_->data()) + kGuard; }

  // The interior; fails the test when a guard element changed, and when
  // require_written and an interior element still holds the sentinel.
  std::vector<T> download(bool require_written = true) {
    gpu_.synchronize();
    std::vector<T> host(static_cast<std::size_t>(n_ + 2 * kGuard));
    gpu_.copy_to_host(host.data(), buf_->data(), host.size() * sizeof(T));
    int64_t bad_guards = 0, unwritten = 0;
    for (int64_t i = 0; i < kGuard; ++i) {
      bad_guards += !is_sentinel(host[static_cast<std::size_t>(i)]);
      bad_guards += !is_sentinel(host[static_cast<std::size_t>(n_ + kGuard + i)]);
    }
    for (int64_t i = 0; i < n_ && require_written; ++i) unwritten += is_sentinel(host[static_cast<std::size_t>(kGuard + i)]);
    CHECK_MESSAGE(bad_guards == 0, bad_guards << " guard elements overwritten");
    CHECK_MESSAGE(unwritten == 0, unwritten << " of " << n_ << " output elements not written");
    return {host.begin() + kGuard, host.begin() + kGuard + n_};
  }

 private:
  Backend& gpu_;
  int64_t n_;
  std::unique_ptr<DeviceBuffer> buf_;
};

// The bits of bf16(f), rounded to nearest even as __float2bfloat16_rn;
// finite inputs.
inline uint16_t bf16_bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float float_of_bf16_bits(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline std::vector<uint16_t> bf16_bits_of(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = bf16_bits_of(v[i]);
  return out;
}

inline std::vector<float> floats_of_bf16_bits(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = float_of_bf16_bits(v[i]);
  return out;
}

inline std::vector<float> random_floats(std::mt19937& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<int32_t> random_ints(std::mt19937& rng, int64_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> v(static_cast<std::size_t>(n));
  for (int32_t& x : v) x = dist(rng);
  return v;
}

// |got - want| <= atol + rtol * |want| everywhere; reports the worst element.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
                        const std::string& what) {
  REQUIRE(got.size() == want.size());
  int64_t bad = 0, worst = -1;
  double worst_excess = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double limit = atol + rtol * std::fabs(static_cast<double>(want[i]));
    if (!(diff <= limit)) {  // NaN fails too
      ++bad;
      if (worst < 0 || diff - limit > worst_excess) {
        worst = static_cast<int64_t>(i);
        worst_excess = diff - limit;
      }
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " elements off; worst [" << worst
                               << "] got " << (worst >= 0 ? got[static_cast<std::size_t>(worst)] : 0.0f) << " want "
                               << (worst >= 0 ? want[static_cast<std::size_t>(worst)] : 0.0f));
}

}  // namespace llmctl::kernels::test
