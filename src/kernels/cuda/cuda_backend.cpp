// The CUDA backend: owns the device's stream, the cuBLASLt handle and
// workspace, and the stream-ordered memory pool, and forwards each op to its kernel file. Ops
// enqueue and return; the engine's copy_to_host + synchronize end a step.
#include "kernels/cuda_backend.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/pinned_slot_ring.h"
#include "kernels/cuda/weight_upload.h"

namespace llmctl::kernels {
namespace cuda {
namespace {

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, cudaStream_t stream) : device_(device), stream_(stream), own_stream_(stream == nullptr) {
    CUDA_CHECK(cudaSetDevice(device_));
    if (own_stream_) CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasLtCreate(&linear_.lt));
    linear_.workspace_bytes = kCublasLtWorkspaceBytes;
    CUDA_CHECK(cudaMalloc(&linear_.workspace, linear_.workspace_bytes));
    // Keep freed blocks in the pool: the engine frees and reallocates its
    // per-step buffers every step, and returning memory to the driver at each
    // synchronisation would make every allocation a real cudaMalloc.
    cudaMemPool_t pool = nullptr;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  ~CudaBackend() override {
    // Best effort: a broken device must not turn shutdown into an abort.
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(stream_);
    release_linear_scratch(linear_);
    if (attention_.partials != nullptr) (void)cudaFree(attention_.partials);
    if (attention_.counters != nullptr) (void)cudaFree(attention_.counters);
    (void)cudaFree(linear_.workspace);
    (void)cublasLtDestroy(linear_.lt);
    if (own_stream_) (void)cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cuda"; }
  MemoryInfo memory_info() override {
    bind();
    // Freed blocks stay in the stream-ordered pool (see the constructor);
    // give them back first so free memory is what the process truly needs.
    (void)cudaStreamSynchronize(stream_);
    uint64_t cached = 0;
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) == cudaSuccess) {
      uint64_t reserved = 0, used = 0;
      if (cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess &&
          cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used) == cudaSuccess && reserved > used) {
        cached = reserved - used;
      }
      (void)cudaMemPoolTrimTo(pool, 0);
    }
    std::size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return {};
    return {total_bytes, free_bytes, cached};
  }
  uint64_t scratch_epoch() const override {
    // The addresses themselves: a buffer regrown in place leaves graphs valid.
    auto bits = [](const void* p) { return static_cast<uint64_t>(reinterpret_cast<std::uintptr_t>(p)); };
    uint64_t h = bits(linear_.x_bf16);
    h = h * 1000003u ^ bits(attention_.partials);
    h = h * 1000003u ^ bits(attention_.counters);
    return h;
  }
  cudaStream_t stream() const { return stream_; }
  void bind_device() const { bind(); }

  Result<std::unique_ptr<DeviceBuffer>> allocate(std::size_t size_bytes) override {
    bind();
    void* p = nullptr;
    const std::size_t rounded = size_bytes == 0 ? 256 : (size_bytes + 255) / 256 * 256;
    const cudaError_t err = cudaMallocAsync(&p, rounded, stream_);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky-free error so later calls do not see it
      return Status::unavailable("cuda backend: cannot allocate " + std::to_string(size_bytes) +
                                 " bytes on device " + std::to_string(device_) + ": " + cudaGetErrorString(err));
    }
    CUDA_CHECK(cudaMemsetAsync(p, 0, rounded, stream_));
    return std::make_unique<DeviceBuffer>(this, p, size_bytes);
  }

  void deallocate(void* data) override {
    if (data == nullptr) return;
    bind();
    CUDA_CHECK(cudaFreeAsync(data, stream_));
  }

  void copy_to_device(void* dst, const void* src, std::size_t n) override {
    bind();
    // Through pinned memory the host need not wait for the device; larger
    // copies (start-up only) wait, as a pageable copy must.
    if (n <= uploads_.slot_bytes()) {
      if (n == 0) return;
      const int slot = uploads_.acquire();
      std::memcpy(uploads_.host(slot), src, n);
      CUDA_CHECK(cudaMemcpyAsync(dst, uploads_.host(slot), n, cudaMemcpyDefault, stream_));
      uploads_.release_after(slot, stream_);
      return;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy_to_host(void* dst, const void* src, std::size_t n) override {
    bind();
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void synchronize() override {
    bind();
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // bf16 weights: batch-1 decode reads every weight once per step, so half
  // the bytes is close to half the step; the tensor cores take bf16 too.
  WeightDtype weight_dtype() const override { return WeightDtype::kBF16; }

  // bf16 is copied as-is, fp32 / f16 converted on the device (see
  // WeightUploader); the next ops on the stream are ordered after it.
  void upload_weight(void* dst, const void* src, WeightDtype src_dtype, std::size_t count) override {
    bind();
    CUDA_REQUIRE(reinterpret_cast<uintptr_t>(dst) % alignof(__nv_bfloat16) == 0);
    uploader_.upload(static_cast<__nv_bfloat16*>(dst), src, src_dtype, count, stream_);
  }

  void embedding(float* out, const int32_t* ids, const void* table, int64_t num_tokens, int64_t hidden) override {
    bind();
    cuda::embedding(out, ids, static_cast<const __nv_bfloat16*>(table), num_tokens, hidden, stream_);
  }
  void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps) override {
    bind();
    cuda::rms_norm(out, x, weight, rows, n, eps, stream_);
  }
  void rms_norm_heads(float* x, int64_t stride, const float* weight, int64_t num_tokens, int64_t num_heads,
                      int64_t head_dim, float eps) override {
    bind();
    cuda::rms_norm_heads(x, stride, weight, num_tokens, num_heads, head_dim, eps, stream_);
  }
  void add_rms_norm(float* out, float* residual, const float* x, const float* weight, int64_t rows, int64_t n,
                    float eps) override {
    bind();
    cuda::add_rms_norm(out, residual, x, weight, rows, n, eps, stream_);
  }
  void linear(float* out, const float* x, const void* w, const float* bias, int64_t num_tokens,
              int64_t out_features, int64_t in_features) override {
    bind();
    cuda::linear(out, x, static_cast<const __nv_bfloat16*>(w), bias, num_tokens, out_features, in_features, linear_,
                 stream_);
  }
  void rope(float* q, int64_t q_stride, float* k, int64_t k_stride, const int32_t* positions,
            const float* inv_freq, int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads,
            int64_t head_dim) override {
    bind();
    cuda::rope(q, q_stride, k, k_stride, positions, inv_freq, num_tokens, num_q_heads, num_kv_heads, head_dim,
               stream_);
  }
  void silu_and_mul(float* out, const float* gate_up, int64_t num_tokens, int64_t width) override {
    bind();
    cuda::silu_and_mul(out, gate_up, num_tokens, width, stream_);
  }
  void gated_mlp(float* out, const float* x, const void* w_gate_up, const void* w_down, float* gate_up, float* act,
                 int64_t num_tokens, int64_t hidden, int64_t ff) override {
    bind();
    cuda::gated_mlp(out, x, static_cast<const __nv_bfloat16*>(w_gate_up), static_cast<const __nv_bfloat16*>(w_down),
                    gate_up, act, num_tokens, hidden, ff, linear_, stream_);
  }
  // A batched decode step reads more KV bytes than weight bytes: bf16 halves
  // them, and twice the tokens fit (transformers keeps a bf16 model's cache
  // in bf16 too).
  KvDtype kv_dtype() const override { return KvDtype::kBF16; }
  void store_kv(void* k_cache, void* v_cache, const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const int32_t* slot_mapping, int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim) override {
    bind();
    cuda::store_kv(static_cast<__nv_bfloat16*>(k_cache), static_cast<__nv_bfloat16*>(v_cache), k, k_stride, v,
                   v_stride, slot_mapping, num_tokens, num_kv_heads, head_dim, stream_);
  }
  void paged_attention(float* out, const float* q, int64_t q_stride, const void* k_cache, const void* v_cache,
                       const AttentionBatch& batch, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                       float scale, int64_t sliding_window) override {
    bind();
    PagedAttentionArgs args;
    args.num_seqs = batch.num_seqs;
    args.query_start = batch.query_start;
    args.context_len = batch.context_len;
    args.block_tables = batch.block_tables;
    args.max_blocks_per_seq = batch.max_blocks_per_seq;
    args.block_size = batch.block_size;
    args.num_tokens = batch.num_tokens;
    args.num_decode_seqs = batch.num_decode_seqs;
    cuda::paged_attention(out, q, q_stride, static_cast<const __nv_bfloat16*>(k_cache),
                          static_cast<const __nv_bfloat16*>(v_cache), args, num_q_heads, num_kv_heads, head_dim, scale,
                          sliding_window, attention_, stream_);
  }
  void argmax_rows(int32_t* ids, const float* logits, int64_t rows, int64_t vocab) override {
    bind();
    cuda::argmax_rows(ids, logits, rows, vocab, stream_);
  }
  void sample_rows(int32_t* ids, float* logits, const SamplingRows& rows) override {
    bind();
    cuda::sample_rows(ids, logits, rows, stream_);
  }
  void argmax_with_value(float* pairs, const float* logits, int64_t rows, int64_t row_stride, int64_t valid,
                         int64_t index_base) override {
    bind();
    cuda::argmax_with_value(pairs, logits, rows, row_stride, valid, index_base, stream_);
  }
  void merge_argmax(int32_t* ids, const float* pairs, int64_t num_shards, int64_t rows) override {
    bind();
    cuda::merge_argmax(ids, pairs, num_shards, rows, stream_);
  }
  void gather_rows(float* out, const float* x, const int32_t* indices, int64_t num_rows, int64_t width) override {
    bind();
    cuda::gather_rows(out, x, indices, num_rows, width, stream_);
  }

 private:
  // The engine thread may not be the thread that built the backend, and a
  // thread's current device defaults to 0.
  void bind() const { CUDA_CHECK(cudaSetDevice(device_)); }

  // cuBLASLt's recommendation for Hopper is 32 MiB.
  static constexpr std::size_t kCublasLtWorkspaceBytes = std::size_t{32} << 20;

  int device_;
  cudaStream_t stream_ = nullptr;
  // A tensor-parallel rank enqueues on its NCCL group's stream, so the
  // collectives and the model's kernels need no cross-stream events.
  bool own_stream_ = true;
  LinearScratch linear_;
  AttentionScratch attention_;
  WeightUploader uploader_;
  // A step's inputs and sampling settings: 4 MiB holds a 256-sequence
  // decode batch's with 8k-token block tables (16 MiB pinned in all).
  PinnedSlotRing uploads_{4, std::size_t{4} << 20};
};

}  // namespace
}  // namespace cuda

struct CudaGraph::Impl {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaStream_t stream = nullptr;
};

namespace {

cuda::CudaBackend* as_cuda(Backend& backend) {
  return backend.name() == "cuda" ? static_cast<cuda::CudaBackend*>(&backend) : nullptr;
}

}  // namespace

CudaGraph::CudaGraph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CudaGraph::~CudaGraph() {
  if (impl_->exec != nullptr) (void)cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph != nullptr) (void)cudaGraphDestroy(impl_->graph);
}

Status CudaGraph::begin_capture(Backend& backend) {
  cuda::CudaBackend* b = as_cuda(backend);
  if (b == nullptr) return Status::invalid_argument("cuda graph: backend " + std::string(backend.name()) + " is not cuda");
  b->bind_device();
  // Global mode: a stray synchronising call from any thread during capture
  // is an error, not a silently broken graph.
  const cudaError_t err = cudaStreamBeginCapture(b->stream(), cudaStreamCaptureModeGlobal);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return Status::internal(std::string("cuda graph: cannot begin capture: ") + cudaGetErrorString(err));
  }
  return Status::ok();
}

Result<std::unique_ptr<CudaGraph>> CudaGraph::end_capture(Backend& backend) {
  cuda::CudaBackend* b = as_cuda(backend);
  if (b == nullptr) return Status::invalid_argument("cuda graph: backend " + std::string(backend.name()) + " is not cuda");
  b->bind_device();
  auto impl = std::make_unique<Impl>();
  impl->stream = b->stream();
  cudaError_t err = cudaStreamEndCapture(impl->stream, &impl->graph);
  if (err == cudaSuccess) err = cudaGraphInstantiate(&impl->exec, impl->graph, 0);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (impl->graph != nullptr) (void)cudaGraphDestroy(impl->graph);
    return Status::internal(std::string("cuda graph: capture failed: ") + cudaGetErrorString(err));
  }
  return std::unique_ptr<CudaGraph>(new CudaGraph(std::move(impl)));
}

void CudaGraph::replay() { CUDA_CHECK(cudaGraphLaunch(impl_->exec, impl_->stream)); }

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

Result<std::unique_ptr<Backend>> make_cuda_backend(int device, void* stream) {
  const int count = cuda_device_count();
  if (count == 0) return Status::unavailable("cuda backend: no CUDA device is visible (driver missing or no GPU)");
  if (device < 0 || device >= count) {
    return Status::unavailable("cuda backend: device " + std::to_string(device) + " does not exist (" +
                               std::to_string(count) + " visible)");
  }
  return std::unique_ptr<Backend>(std::make_unique<cuda::CudaBackend>(device, static_cast<cudaStream_t>(stream)));
}

}  // namespace llmctl::kernels
