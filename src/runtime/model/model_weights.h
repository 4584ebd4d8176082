// The weights of a model folder, loaded from safetensors (single file or
// sharded via model.safetensors.index.json), checked by name and shape against
// what the architecture needs, and kept in the checkpoint's dtype: whole
// tensors and row slices as views of the mapped files, column slices copied.
// The backend converts at upload (fp32 on the CPU, bf16 on CUDA), so no fp32
// copy of the whole model is ever made on the host for a device run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/uninitialized_allocator.h"
#include "runtime/model/dtype.h"
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

// One tensor (or a rank's slice of it), row-major, num_elements(shape)
// elements of `dtype` (F32, F16 or BF16) at data(): either `view`, inside a
// mapping its ModelWeights keeps alive, or `owned`. Cheap to move; a copy
// still views the same mapping.
struct Weight {
  std::vector<int64_t> shape;
  DType dtype = DType::kF32;
  const std::byte* view = nullptr;
  // Sized by resize() and then written in full: its bytes start unset.
  std::vector<std::byte, UninitializedAllocator<std::byte>> owned;

  const std::byte* data() const { return owned.empty() ? view : owned.data(); }
  std::size_t num_elements() const;
  std::size_t size_bytes() const { return num_elements() * dtype_size_bytes(dtype); }
  // The values converted to fp32 (tests, small tensors).
  std::vector<float> to_f32() const;
  // An owned fp32 weight (synthetic models in tests and benchmarks).
  static Weight from_f32(std::vector<int64_t> shape, const std::vector<float>& values);
};

struct LoadProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string_view tensor;  // the tensor just read
};

// Called after each tensor on the loading thread; keep it cheap.
using LoadProgressCallback = std::function<void(const LoadProgress&)>;

class ModelWeights {
 public:
  // nullptr when absent.
  const Weight* find(const std::string& name) const;
  const std::map<std::string, Weight>& all() const { return weights_; }
  void put(std::string name, Weight weight) { weights_[std::move(name)] = std::move(weight); }
  // Keeps a mapping that weights view alive as long as these weights.
  void keep_alive(std::shared_ptr<const void> mapping) { mappings_.push_back(std::move(mapping)); }
  // Bytes of the weights in their checkpoint dtype.
  uint64_t total_bytes() const;

 private:
  std::map<std::string, Weight> weights_;
  std::vector<std::shared_ptr<const void>> mappings_;
};

// Loads <model_dir>/model.safetensors or the shards listed by
// <model_dir>/model.safetensors.index.json. Fails with a message naming the
// tensor for a missing weight, a wrong shape ("...: shape [64,512], expected
// [512,512]"), a non-float dtype, a tensor in two shards, or a broken file.
Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const LoadProgressCallback& progress = {});

// One tensor-parallel rank's slices only (see ShardLayout), each viewed or
// copied straight from the mapped file, so no rank ever holds the whole model. The
// checkpoint is checked against the full shapes first; the loaded weights
// have the slice's shape: q/k/v, gate/up and their biases keep this rank's
// output rows, o_proj and down_proj its input columns, embed_tokens and
// lm_head its vocabulary rows padded with zeros to vocab_per_rank; norms and
// o_proj's bias are whole.
Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const ShardLayout& shard, const LoadProgressCallback& progress = {});

// The part of checkpoint tensor `name` a rank of `layout` keeps: rows
// [begin, begin + count) of dimension 0 (padded with zero rows up to
// padded_rows), or columns [begin, begin + count) of dimension 1, or all of it.
struct WeightSlice {
  enum class Kind { kWhole, kRows, kColumns };
  Kind kind = Kind::kWhole;
  int64_t begin = 0, count = 0, padded_rows = 0;
};
WeightSlice weight_slice(const std::string& name, const ModelConfig& config, const ShardLayout& layout);

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace llmctl::model
