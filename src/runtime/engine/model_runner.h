// The only engine code that touches the device: owns the backend's copy of
// the model and the paged KV cache, turns a SchedulerOutput into the step's
// device inputs, runs the forward pass and brings back the logits of the
// sequences that sample. Used on the engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "kernels/kernels.h"
#include "runtime/engine/scheduler.h"
#include "runtime/model/decoder_model.h"

namespace llmctl::engine {

class ModelRunner {
 public:
  static Result<std::unique_ptr<ModelRunner>> create(std::unique_ptr<kernels::Backend> backend,
                                                     const model::ModelConfig& config,
                                                     const model::ModelWeights& weights, int32_t num_blocks,
                                                     int32_t block_size);

  // Bytes of KV cache one block takes across all layers (K and V, fp32).
  static int64_t kv_block_bytes(const model::ModelConfig& config, int32_t block_size);

  // Runs one step. Returns logits [num_sampling, vocab] (host, row-major), one
  // row per scheduled sequence with sample == true, in schedule order.
  Result<std::vector<float>> run(const SchedulerOutput& out);

  const model::ModelConfig& config() const { return model_->config(); }

 private:
  ModelRunner() = default;

  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<model::DecoderModel> model_;
  std::vector<std::unique_ptr<kernels::DeviceBuffer>> kv_buffers_;
  model::KvCacheView kv_;
};

}  // namespace llmctl::engine
