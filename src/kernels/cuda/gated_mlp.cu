// The gated MLP of a layer (cuda_ops.h says why the intermediates are bf16
// on the cuBLASLt path).
#include <cuda_bf16.h>

#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace llmctl::kernels::cuda {
namespace {

// LLMCTL_MLP_BF16=0 keeps the fp32 intermediates on every path, for A/B
// benchmarks of this file on one card.
bool bf16_intermediates() {
  static const bool on = [] {
    const char* env = std::getenv("LLMCTL_MLP_BF16");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return on;
}

}  // namespace

void gated_mlp(float* out, const float* x, const __nv_bfloat16* w_gate_up, const __nv_bfloat16* w_down,
               float* gate_up, float* act, int64_t num_tokens, int64_t hidden, int64_t ff, LinearScratch& scratch,
               cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && hidden > 0 && ff > 0);
  if (num_tokens == 0) return;
  // Both GEMMs on cuBLASLt or neither: a GEMV would want fp32 in or out.
  const bool lt = bf16_intermediates() && !linear_takes_gemv(num_tokens, 2 * ff, hidden) && !linear_takes_gemv(num_tokens, hidden, ff) &&
                  linear_lt_ready(num_tokens, 2 * ff, hidden, true, scratch) &&
                  linear_lt_ready(num_tokens, hidden, ff, false, scratch);
  if (!lt) {
    linear(gate_up, x, w_gate_up, nullptr, num_tokens, 2 * ff, hidden, scratch, stream);
    silu_and_mul(act, gate_up, num_tokens, ff, stream);
    linear(out, act, w_down, nullptr, num_tokens, hidden, ff, scratch, stream);
    return;
  }
  auto* gate_up_bf16 = reinterpret_cast<__nv_bfloat16*>(gate_up);
  auto* act_bf16 = reinterpret_cast<__nv_bfloat16*>(act);
  const __nv_bfloat16* x_bf16 = linear_x_to_bf16(x, num_tokens * hidden, scratch, stream);
  linear_lt(gate_up_bf16, true, x_bf16, w_gate_up, num_tokens, 2 * ff, hidden, scratch, stream);
  silu_and_mul_bf16(act_bf16, gate_up_bf16, num_tokens, ff, stream);
  linear_lt(out, false, act_bf16, w_down, num_tokens, hidden, ff, scratch, stream);
}

}  // namespace llmctl::kernels::cuda
