// Linear layer with bf16 weights: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]),
// x and out fp32. A single token (decode at batch 1), or up to
// kGemvMaxTokens on a small weight, takes the own GEMV (gemv_bf16.cu),
// which reads x in fp32. Otherwise cuBLASLt (linear_takes_gemv says why): x is
// rounded to bf16 into the scratch buffer, and the tensor cores multiply
// bf16 by bf16 with fp32 accumulation into fp32 out. Row-major out^T is
// column-major out, so the call is out(N x T) = w^T(N x K) * x(K x T) with w
// read as column-major K x N. A shape cuBLASLt has no algorithm for (odd K
// on tiny models) falls back to the GEMV kernel.
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cstdlib>
#include <memory>
#include <unordered_map>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.cuh"

namespace llmctl::kernels::cuda {
namespace {

struct BiasLaunch {
  static constexpr int kThreads = 256;
  dim3 grid;
  BiasLaunch(int64_t num_tokens, int64_t n)
      : grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>((n + kThreads - 1) / kThreads)) {}
};

__global__ void add_bias_kernel(float* out, const float* bias, int64_t n) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (i < n) out[t * n + i] += bias[i];
}

}  // namespace

// The cuBLASLt descriptors of one shape and the algorithm the heuristic
// picked for it.
class LtMatmul {
 public:
  LtMatmul(int64_t num_tokens, int64_t n, int64_t k, bool out_bf16, std::size_t workspace_bytes) {
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&b_, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(num_tokens), k));
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&c_, out_bf16 ? CUDA_R_16BF : CUDA_R_32F, static_cast<uint64_t>(n),
                                   static_cast<uint64_t>(num_tokens), n));
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                      sizeof workspace_bytes));
  }
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;
  ~LtMatmul() {
    (void)cublasLtMatmulPreferenceDestroy(pref_);
    (void)cublasLtMatrixLayoutDestroy(c_);
    (void)cublasLtMatrixLayoutDestroy(b_);
    (void)cublasLtMatrixLayoutDestroy(a_);
    (void)cublasLtMatmulDescDestroy(desc_);
  }

  // Asks the heuristic once; false when cuBLASLt offers no algorithm for
  // this shape and alignment.
  bool plan(const LinearScratch& scratch) {
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(scratch.lt, desc_, a_, b_, c_, c_, pref_, 1, &heuristic_, &found);
    has_algo_ = st == CUBLAS_STATUS_SUCCESS && found > 0;
    return has_algo_;
  }
  bool has_algo() const { return has_algo_; }

  void run(void* out, const __nv_bfloat16* x, const __nv_bfloat16* w, const LinearScratch& scratch,
           cudaStream_t stream) const {
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(scratch.lt, desc_, &one, w, a_, x, b_, &zero, out, c_, out, c_, &heuristic_.algo,
                                scratch.workspace, scratch.workspace_bytes, stream));
  }

 private:
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic_{};
  bool has_algo_ = false;
};

// Plans by (tokens, out, in, output type). Creating descriptors and asking the heuristic
// costs tens of microseconds of host time, once per linear per step, which
// at seven linears a layer would be milliseconds per step. The token count
// varies with the batch, so the cache is bounded; when full it starts over
// (a steady workload revisits few shapes).
class LtPlanCache {
 public:
  static constexpr std::size_t kMaxPlans = 4096;

  const LtMatmul& get(int64_t num_tokens, int64_t n, int64_t k, bool out_bf16, const LinearScratch& scratch) {
    const Key key{num_tokens, n, k, out_bf16};
    auto it = plans_.find(key);
    if (it != plans_.end()) return *it->second;
    if (plans_.size() >= kMaxPlans) plans_.clear();
    auto plan = std::make_unique<LtMatmul>(num_tokens, n, k, out_bf16, scratch.workspace_bytes);
    plan->plan(scratch);
    return *plans_.emplace(key, std::move(plan)).first->second;
  }

 private:
  struct Key {
    int64_t t, n, k;
    bool out_bf16;
    bool operator==(const Key& o) const { return t == o.t && n == o.n && k == o.k && out_bf16 == o.out_bf16; }
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const {
      return std::hash<int64_t>()(key.t * 1000003 ^ key.n * 8191 ^ key.k ^ (key.out_bf16 ? 1 << 30 : 0));
    }
  };
  std::unordered_map<Key, std::unique_ptr<LtMatmul>, KeyHash> plans_;
};

namespace {

void ensure_x_scratch(LinearScratch& scratch, int64_t count, cudaStream_t stream) {
  const auto need = static_cast<std::size_t>(count);
  if (scratch.x_bf16_count >= need) return;
  if (scratch.x_bf16 != nullptr) CUDA_CHECK(cudaFreeAsync(scratch.x_bf16, stream));
  void* p = nullptr;
  // A step's activations are small next to the weights and KV cache; not
  // fitting them is out of memory mid-step, which the engine cannot undo.
  CUDA_CHECK(cudaMallocAsync(&p, need * sizeof(__nv_bfloat16), stream));
  scratch.x_bf16 = static_cast<__nv_bfloat16*>(p);
  scratch.x_bf16_count = need;
}

// Past one token the own GEMV reads fp32 x from L1 once per token for every
// 16 bytes of weights, and L1, not DRAM, becomes the limit: for the 8B
// shape on an H100 a decode step took 13.1 ms at 4 tokens and 20.6 ms at 8
// through it, against 6.6 and 7.1 ms through cuBLASLt (6.55 against 6.41 ms
// at 2). So it takes single tokens, and up to kGemvMaxTokens on weights
// small enough that a step is launch-bound either way (tiny models), where
// it keeps x in fp32. LLMCTL_GEMV_MAX_TOKENS (0..8) overrides the reach
// for large weights, for benchmarks on other cards.
constexpr int64_t kGemvLinearTokens = 1;
constexpr int64_t kGemvSmallWeightBytes = int64_t{4} << 20;

int64_t gemv_max_tokens() {
  static const int64_t reach = [] {
    const char* env = std::getenv("LLMCTL_GEMV_MAX_TOKENS");
    if (env == nullptr || *env == '\0') return kGemvLinearTokens;
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    return *end == '\0' && n >= 0 && n <= kGemvMaxTokens ? static_cast<int64_t>(n) : kGemvLinearTokens;
  }();
  return reach;
}

}  // namespace

bool linear_takes_gemv(int64_t num_tokens, int64_t out_features, int64_t in_features) {
  if (num_tokens <= gemv_max_tokens()) return true;
  const bool small = out_features * in_features * static_cast<int64_t>(sizeof(__nv_bfloat16)) < kGemvSmallWeightBytes;
  return small && num_tokens <= kGemvMaxTokens;
}

const __nv_bfloat16* linear_x_to_bf16(const float* x, int64_t count, LinearScratch& scratch, cudaStream_t stream) {
  ensure_x_scratch(scratch, count, stream);
  convert_to_bf16(scratch.x_bf16, x, count, stream);
  return scratch.x_bf16;
}

namespace {

const LtMatmul& plan_of(int64_t num_tokens, int64_t out_features, int64_t in_features, bool out_bf16,
                        LinearScratch& scratch) {
  if (scratch.plans == nullptr) scratch.plans = new LtPlanCache();
  return scratch.plans->get(num_tokens, out_features, in_features, out_bf16, scratch);
}

}  // namespace

bool linear_lt_ready(int64_t num_tokens, int64_t out_features, int64_t in_features, bool out_bf16,
                     LinearScratch& scratch) {
  return plan_of(num_tokens, out_features, in_features, out_bf16, scratch).has_algo();
}

void linear_lt(void* out, bool out_bf16, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t num_tokens,
               int64_t out_features, int64_t in_features, LinearScratch& scratch, cudaStream_t stream) {
  const LtMatmul& matmul = plan_of(num_tokens, out_features, in_features, out_bf16, scratch);
  CUDA_REQUIRE(matmul.has_algo());
  matmul.run(out, x, w, scratch, stream);
}

void linear(float* out, const float* x, const __nv_bfloat16* w, const float* bias, int64_t num_tokens,
            int64_t out_features, int64_t in_features, LinearScratch& scratch, cudaStream_t stream) {
  constexpr int64_t kIntMax = 2147483647;
  CUDA_REQUIRE(num_tokens >= 0 && num_tokens <= kIntMax);
  CUDA_REQUIRE(out_features > 0 && out_features <= kIntMax && in_features > 0 && in_features <= kIntMax);
  CUDA_REQUIRE(out_features / BiasLaunch::kThreads < 65535);
  if (num_tokens == 0) return;
  if (linear_takes_gemv(num_tokens, out_features, in_features) ||
      !linear_lt_ready(num_tokens, out_features, in_features, false, scratch)) {
    gemv_bf16(out, x, w, bias, num_tokens, out_features, in_features, stream);
    return;
  }
  const __nv_bfloat16* x_bf16 = linear_x_to_bf16(x, num_tokens * in_features, scratch, stream);
  linear_lt(out, false, x_bf16, w, num_tokens, out_features, in_features, scratch, stream);
  if (bias != nullptr) {
    const BiasLaunch cfg(num_tokens, out_features);
    launch_kernel(add_bias_kernel, cfg.grid, BiasLaunch::kThreads, stream, out, bias, out_features);
    CUDA_CHECK_LAUNCH();
  }
}

void release_linear_scratch(LinearScratch& scratch) {
  if (scratch.x_bf16 != nullptr) (void)cudaFree(scratch.x_bf16);
  scratch.x_bf16 = nullptr;
  scratch.x_bf16_count = 0;
  delete scratch.plans;
  scratch.plans = nullptr;
}

}  // namespace llmctl::kernels::cuda
