// The only engine code that touches the device: owns the backend's copy of
// the model and the paged KV cache, turns a SchedulerOutput into the step's
// device inputs, runs the forward pass and brings back the logits of the
// sequences that sample. Used on the engine thread only.
//
// Tensor parallel: rank 0's runner (the one the Engine drives) broadcasts the
// KV cache size at create() and every step's StepBatch before running it;
// the other ranks run serve_rank() (rank_worker.h), which executes the same
// batches on their shard until rank 0's runner is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "kernels/kernels.h"
#include "runtime/engine/decode_graphs.h"
#include "runtime/engine/sampling_batch.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/step_batch.h"
#include "runtime/model/decoder_model.h"

namespace llmctl::dist {
class Communicator;
}

namespace llmctl::engine {

class ModelRunner {
 public:
  // comm: nullptr (or world_size 1) for one process holding the whole model;
  // else `weights` are this rank's slices and `comm` outlives the runner.
  // Rank 0 tells the other ranks num_blocks and block_size here.
  static Result<std::unique_ptr<ModelRunner>> create(std::unique_ptr<kernels::Backend> backend,
                                                     const model::ModelConfig& config,
                                                     const model::ModelWeights& weights, int32_t num_blocks,
                                                     int32_t block_size, dist::Communicator* comm = nullptr);
  // Tells the other ranks to stop (rank 0 of a working group only).
  ~ModelRunner();

  // Bytes of KV cache one block takes across all layers (K and V, elements
  // of `dtype`, the backend's kv_dtype()), on one process holding every KV
  // head (a tensor-parallel rank needs less: rank_kv_block_bytes).
  static int64_t kv_block_bytes(const model::ModelConfig& config, int32_t block_size, kernels::KvDtype dtype);

  // Runs one step. Returns logits [num_sampling, vocab] (host, row-major), one
  // row per scheduled sequence with sample == true, in schedule order.
  // With `greedy_ids`, every sampling row is plain greedy: each row's first
  // maximum goes there, picked on the device (under tensor parallel each
  // rank picks in its vocabulary slice and the ranks exchange only
  // (maximum, index) pairs), so only 4 bytes per row come back and the
  // returned logits are empty.
  // With `sampling` (a row per sampling sequence) instead, each row's token
  // is drawn on the device (Backend::sample_rows; the host's twin on the
  // joined logits of a sharded model) into *greedy_ids; no logits return.
  Result<std::vector<float>> run(const SchedulerOutput& out, std::vector<int32_t>* greedy_ids = nullptr,
                                 const SamplingBatch* sampling = nullptr);
  // Runs a batch as built by StepBatch::from_schedule (on every rank; ranks
  // other than 0 return no logits, since only rank 0 samples). batch.greedy
  // (set by run() on rank 0 and sent with the batch) selects the pairs
  // exchange on every rank.
  Result<std::vector<float>> execute(const StepBatch& batch, std::vector<int32_t>* greedy_ids = nullptr,
                                     const SamplingBatch* sampling = nullptr);

  // The KV-cache sizing pass (kv_cache_budget.h): runs one step of a
  // num_tokens-token prompt with num_logits sampling rows on every rank (the
  // largest step the scheduler may make), so the device's free memory then
  // reflects weights plus peak activations. Needs a KV cache of at least
  // ceil(num_tokens / block_size) blocks; writes only those blocks.
  Status profile(int32_t num_tokens, int32_t num_logits);
  // Replaces the KV cache with one of num_blocks blocks on every rank (rank
  // 0 tells the others); its contents are lost.
  Status resize_kv(int32_t num_blocks);
  kernels::Backend::MemoryInfo memory_info() { return backend_->memory_info(); }
  kernels::KvDtype kv_dtype() const { return backend_->kv_dtype(); }
  // From now on, steps where every sequence decodes one token replay CUDA
  // graphs (decode_graphs.h); UNAVAILABLE on a backend without them. Rank 0
  // of a group tells the other ranks to do the same. Dropped by resize_kv().
  // Call after the KV cache has its final size.
  Status enable_decode_graphs(int32_t max_num_seqs, int32_t max_model_len);
  int64_t graph_replays() const;
  // Bytes of KV cache one block takes on this rank (its share of the KV heads).
  int64_t rank_kv_block_bytes() const;

  const model::ModelConfig& config() const { return model_->config(); }

 private:
  ModelRunner() = default;
  Status allocate_kv(int32_t num_blocks);
  // Rank 0 sends the batch to the other ranks first.
  Result<std::vector<float>> run_batch(StepBatch batch, std::vector<int32_t>* greedy_ids,
                                       const SamplingBatch* sampling = nullptr);
  // Draws `rows` ids (one per row of `sampling`, else an internal error)
  // into ids: from logits[rows, vocab] in backend memory on the device, or
  // from whole rows on the host (a sharded model's rows, joined there).
  Status sample_rows(float* logits, int64_t rows, const SamplingBatch& sampling, std::vector<int32_t>* ids);
  Status sample_rows_on_host(float* logits, int64_t rows, const SamplingBatch& sampling,
                             std::vector<int32_t>* ids) const;

  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<model::DecoderModel> model_;
  std::vector<std::unique_ptr<kernels::DeviceBuffer>> kv_buffers_;
  model::KvCacheView kv_;
  int32_t num_blocks_ = 0;  // the scheduler's; one more, the padding rows' scratch block, is allocated
  std::unique_ptr<DecodeGraphs> graphs_;
  // LLMCTL_STEP_TIMING=1: where a step's time goes, printed at exit.
  struct StepTiming {
    bool enabled = false;
    int64_t steps = 0, graph_steps = 0;
    double send_ms = 0, launch_ms = 0, wait_ms = 0, graph_ms = 0;
  } timing_;
  dist::Communicator* group_ = nullptr;  // every rank of a group of several ranks
  dist::Communicator* comm_ = nullptr;   // rank 0 of such a group only: it leads the others
  bool comm_failed_ = false;            // a collective failed: the group is unusable
};

}  // namespace llmctl::engine
