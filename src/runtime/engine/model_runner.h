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

  // Bytes of KV cache one block takes across all layers (K and V, fp32), on
  // one process holding every KV head (a tensor-parallel rank needs less).
  static int64_t kv_block_bytes(const model::ModelConfig& config, int32_t block_size);

  // Runs one step. Returns logits [num_sampling, vocab] (host, row-major), one
  // row per scheduled sequence with sample == true, in schedule order.
  // With `greedy_ids`, every sampling row is plain greedy: each row's first
  // maximum goes there (picked on the device when one process holds the
  // whole vocabulary, so only 4 bytes per row come back) and the returned
  // logits may be empty.
  Result<std::vector<float>> run(const SchedulerOutput& out, std::vector<int32_t>* greedy_ids = nullptr);
  // Runs a batch as built by StepBatch::from_schedule (on every rank).
  Result<std::vector<float>> execute(const StepBatch& batch, std::vector<int32_t>* greedy_ids = nullptr);

  const model::ModelConfig& config() const { return model_->config(); }

 private:
  ModelRunner() = default;

  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<model::DecoderModel> model_;
  std::vector<std::unique_ptr<kernels::DeviceBuffer>> kv_buffers_;
  model::KvCacheView kv_;
  dist::Communicator* comm_ = nullptr;  // set on rank 0 of a group of several ranks only
  bool comm_failed_ = false;            // a collective failed: the group is unusable
};

}  // namespace llmctl::engine
