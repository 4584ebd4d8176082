// The weights of a model folder, loaded from safetensors (single file or
// sharded via model.safetensors.index.json), checked by name and shape against
// what the architecture needs, and converted to fp32 host memory (what the CPU
// backend computes in; a device backend uploads from here).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "runtime/model/model_config.h"
#include "runtime/model/shard_layout.h"

namespace llmctl::model {

struct WeightSpec {
  std::string name;            // "model.layers.7.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [out_features, in_features] for linear layers
  bool required = true;        // false: used when present (e.g. a tied lm_head)
};

// Every tensor the decoder of `config` reads, with its expected shape.
std::vector<WeightSpec> expected_weights(const ModelConfig& config);

struct Weight {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major fp32
};

struct LoadProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string_view tensor;  // the tensor just converted
};

// Called after each tensor on the loading thread; keep it cheap.
using LoadProgressCallback = std::function<void(const LoadProgress&)>;

class ModelWeights {
 public:
  // nullptr when absent.
  const Weight* find(const std::string& name) const;
  const std::map<std::string, Weight>& all() const { return weights_; }
  void put(std::string name, Weight weight) { weights_[std::move(name)] = std::move(weight); }
  uint64_t total_bytes() const;

 private:
  std::map<std::string, Weight> weights_;
};

// Loads <model_dir>/model.safetensors or the shards listed by
// <model_dir>/model.safetensors.index.json. Fails with a message naming the
// tensor for a missing weight, a wrong shape ("...: shape [64,512], expected
// [512,512]"), a non-float dtype, a tensor in two shards, or a broken file.
Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const LoadProgressCallback& progress = {});

// One tensor-parallel rank's slices only (see ShardLayout), each converted
// straight from the mapped file, so no rank ever holds the whole model. The
// checkpoint is checked against the full shapes first; the loaded weights
// have the slice's shape: q/k/v, gate/up and their biases keep this rank's
// output rows, o_proj and down_proj its input columns, embed_tokens and
// lm_head its vocabulary rows padded with zeros to vocab_per_rank; norms and
// o_proj's bias are whole.
Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const ShardLayout& shard, const LoadProgressCallback& progress = {});

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace llmctl::model
