// Weights with seeded random values in place of a checkpoint (vLLM's
// --load-format dummy): a model folder then needs only config.json and a
// tokenizer, and a benchmark of a shape (a 70B on 8 GPUs, say) skips writing,
// reading and mapping hundreds of gigabytes, since speed does not depend on
// the values.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_weights.h"
#include "runtime/model/shard_layout.h"

namespace llmctl::model {

// Every weight of `config` in bf16, `shard`'s slice only, with transformers'
// default initialisation scale: linear and embedding weights uniform with
// standard deviation 0.02, norm weights 1, biases 0. Each element is a
// function of the seed, the tensor's name and the element's index in the
// whole tensor, so every tensor-parallel split holds slices of one and the
// same model (and padded vocabulary rows are zero, as when loading).
// `threads` fill large tensors (0: one per core, at most 64).
Result<ModelWeights> random_model_weights(const ModelConfig& config, const ShardLayout& shard, uint64_t seed = 0,
                                          const LoadProgressCallback& progress = {}, int threads = 0);

}  // namespace llmctl::model
