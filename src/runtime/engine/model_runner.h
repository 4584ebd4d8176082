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

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/status.h"
#include "kernels/kernels.h"
#include "runtime/engine/decode_graphs.h"
#include "runtime/engine/sampling_batch.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/step_batch.h"
#include "runtime/engine/step_size_histogram.h"
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

  // Runs one step in two halves, so the host can work while the device
  // runs it (the engine's async scheduling). launch() sends the batch (as
  // built by StepBatch::from_schedule) to the other ranks and enqueues the
  // forward pass, and with `sampling` the device's draws, then returns; on
  // the CPU the forward pass runs inside it. wait() waits for the step and
  // returns logits [num_sampling, vocab] (host, row-major), one row per
  // scheduled sequence with sample == true, in schedule order. One step at
  // a time: every launch() is followed by its wait().
  // With want_ids, every sampling row is plain greedy: each row's first
  // maximum goes to *greedy_ids, picked on the device (under tensor
  // parallel each rank picks in its vocabulary slice and the ranks exchange
  // only (maximum, index) pairs), so only 4 bytes per row come back and the
  // returned logits are empty.
  // With `sampling` (a row per sampling sequence; copied) instead, each
  // row's token is drawn on the device (Backend::sample_rows; the host's
  // twin on the joined logits of a sharded model) into *greedy_ids; no
  // logits return.
  Status launch(StepBatch batch, bool want_ids, const SamplingBatch* sampling = nullptr);
  Result<std::vector<float>> wait(std::vector<int32_t>* greedy_ids);
  // Runs a batch as built by StepBatch::from_schedule (on every rank; ranks
  // other than 0 return no logits, since only rank 0 samples). batch.greedy
  // (set by launch() on rank 0 and sent with the batch) selects the pairs
  // exchange on every rank.
  Result<std::vector<float>> execute(const StepBatch& batch, std::vector<int32_t>* greedy_ids = nullptr,
                                     const SamplingBatch* sampling = nullptr);
  // For LLMCTL_STEP_TIMING: one engine step took step_ms in all, host_ms of
  // it outside launch() and wait() (scheduling, stop checks, outputs), and
  // overlapped_ms of that while a step ran on the device.
  void note_engine_step(double step_ms, double host_ms, double overlapped_ms);

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
  // The halves of execute(): enqueue() uploads the inputs (and the
  // sampling rows' settings) and enqueues the step; collect() waits for it.
  Status enqueue(const StepBatch& batch, bool want_ids, const SamplingBatch* sampling);
  Result<std::vector<float>> collect(std::vector<int32_t>* greedy_ids);
  // Uploads the rows' settings and lists of `sampling` for sample_rows
  // (before the forward pass, while the stream is idle, so that enqueuing
  // the draws after it never waits for the device).
  Status upload_sampling(const SamplingBatch& sampling);
  // Enqueues the draws of the uploaded rows from logits[rows, vocab] in
  // backend memory, one row per row of the uploaded batch.
  void enqueue_sampling(float* logits);
  // Draws one id per row of `sampling` from whole rows on the host (a
  // sharded model's rows, joined there).
  Status sample_rows_on_host(float* logits, int64_t rows, const SamplingBatch& sampling,
                             std::vector<int32_t>* ids) const;

  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<model::DecoderModel> model_;
  std::vector<std::unique_ptr<kernels::DeviceBuffer>> kv_buffers_;
  model::KvCacheView kv_;
  int32_t num_blocks_ = 0;  // the scheduler's; one more, the padding rows' scratch block, is allocated
  std::unique_ptr<DecodeGraphs> graphs_;
  // The step between enqueue() and collect(): what it writes and how its
  // results come back.
  struct Pending {
    bool active = false;
    bool graph = false;           // replayed as a decode graph
    bool greedy = false;          // the forward pass picked each row's maximum into ids
    bool sampled_on_device = false;  // sample_rows enqueued into sample_ids
    std::optional<SamplingBatch> sampling;  // drawn on the host after a sharded join
    int32_t num_seqs = 0;
    int64_t num_tokens = 0, num_logits = 0, out_floats = 0;
    std::unique_ptr<kernels::DeviceBuffer> inputs, logits, ids, sampling_buffer;
    int32_t* sample_ids = nullptr;      // in sampling_buffer
    kernels::SamplingRows device_rows;  // pointing into sampling_buffer
    std::chrono::steady_clock::time_point start, launched;
  } pending_;
  // LLMCTL_STEP_TIMING=1: where a step's time goes, printed at exit.
  struct StepTiming {
    bool enabled = false;
    int64_t engine_steps = 0;
    double send_ms = 0, launch_ms = 0, wait_ms = 0;
    double engine_ms = 0, engine_host_ms = 0, engine_overlapped_ms = 0;
    // Eager steps by their tokens, decode graph steps by their sequences;
    // their totals are the steps' counts and times.
    StepSizeHistogram eager{{64, 256, 1024, 4096, INT64_MAX}};
    StepSizeHistogram graphs{{8, 32, 128, 512, INT64_MAX}};
  } timing_;
  dist::Communicator* group_ = nullptr;  // every rank of a group of several ranks
  dist::Communicator* comm_ = nullptr;   // rank 0 of such a group only: it leads the others
  bool comm_failed_ = false;            // a collective failed: the group is unusable
};

}  // namespace llmctl::engine
