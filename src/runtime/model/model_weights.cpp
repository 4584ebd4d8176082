#include "runtime/model/model_weights.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "runtime/model/safetensors_file.h"

namespace llmctl::model {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<WeightSpec> expected_weights(const ModelConfig& c) {
  std::vector<WeightSpec> specs;
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), ff = c.intermediate_size;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    specs.push_back({p + "input_layernorm.weight", {h}});
    specs.push_back({p + "self_attn.q_proj.weight", {q, h}});
    specs.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    specs.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    specs.push_back({p + "self_attn.o_proj.weight", {h, q}});
    if (c.qkv_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", {q}});
      specs.push_back({p + "self_attn.k_proj.bias", {kv}});
      specs.push_back({p + "self_attn.v_proj.bias", {kv}});
    }
    if (c.o_bias) specs.push_back({p + "self_attn.o_proj.bias", {h}});
    if (c.qk_norm) {
      specs.push_back({p + "self_attn.q_norm.weight", {c.head_dim}});
      specs.push_back({p + "self_attn.k_norm.weight", {c.head_dim}});
    }
    specs.push_back({p + "post_attention_layernorm.weight", {h}});
    specs.push_back({p + "mlp.gate_proj.weight", {ff, h}});
    specs.push_back({p + "mlp.up_proj.weight", {ff, h}});
    specs.push_back({p + "mlp.down_proj.weight", {h, ff}});
  }
  specs.push_back({"model.norm.weight", {h}});
  specs.push_back({"lm_head.weight", {c.vocab_size, h}, !c.tie_word_embeddings});
  return specs;
}

const Weight* ModelWeights::find(const std::string& name) const {
  auto it = weights_.find(name);
  return it == weights_.end() ? nullptr : &it->second;
}

std::size_t Weight::num_elements() const {
  std::size_t n = 1;
  for (int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

std::vector<float> Weight::to_f32() const {
  std::vector<float> out(num_elements());
  convert_to_f32(dtype, data(), out.size(), out.data());
  return out;
}

Weight Weight::from_f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  Weight w;
  w.shape = std::move(shape);
  w.dtype = DType::kF32;
  w.owned.resize(values.size() * sizeof(float));
  std::memcpy(w.owned.data(), values.data(), w.owned.size());
  return w;
}

uint64_t ModelWeights::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, w] : weights_) n += w.size_bytes();
  return n;
}

namespace {

// The shard files of a model folder, opened, and which file holds each tensor.
struct ShardSet {
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::unordered_map<std::string, const SafetensorsFile*> by_tensor;
};

Status open_shards(const std::string& dir, ShardSet* set) {
  namespace fs = std::filesystem;
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::error_code ec;
  std::vector<std::string> shard_names;
  std::unordered_map<std::string, std::string> index_map;  // tensor -> shard
  if (fs::exists(index_path, ec)) {
    ASSIGN_OR_RETURN(std::string text, read_text_file(index_path));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid_argument(index_path + ": not a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) return Status::invalid_argument(index_path + ": missing \"weight_map\"");
    for (const auto& [tensor, file] : wm->items()) {
      if (!file.is_string()) return Status::invalid_argument(index_path + ": weight_map[\"" + tensor + "\"] must be a file name");
      const std::string shard = file.get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "..") {
        return Status::invalid_argument(index_path + ": shard name \"" + shard + "\" must be a plain file name");
      }
      index_map[tensor] = shard;
      if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) shard_names.push_back(shard);
    }
  } else if (fs::exists(dir + "/model.safetensors", ec)) {
    shard_names.push_back("model.safetensors");
  } else {
    return Status::not_found(dir + 
                             ": no model.safetensors or model.safetensors.index.json (to run the shape with random "
                             "weights instead, as a benchmark, pass --load-format dummy)");
  }
  for (const std::string& shard : shard_names) {
    ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(dir + "/" + shard));
    set->files.push_back(std::make_shared<const SafetensorsFile>(std::move(file)));
    const SafetensorsFile* f = set->files.back().get();
    for (const TensorInfo& t : f->header().tensors) {
      auto [it, inserted] = set->by_tensor.emplace(t.name, f);
      if (!inserted) {
        return Status::invalid_argument(t.name + ": present in both " + it->second->path() + " and " + f->path());
      }
    }
  }
  for (const auto& [tensor, shard] : index_map) {
    auto it = set->by_tensor.find(tensor);
    if (it == set->by_tensor.end()) {
      return Status::invalid_argument(tensor + ": listed in model.safetensors.index.json under " + shard +
                                      " but not in that file");
    }
  }
  return Status::ok();
}

}  // namespace

WeightSlice weight_slice(const std::string& name, const ModelConfig& c, const ShardLayout& l) {
  if (!l.sharded()) return {};
  const int64_t d = c.head_dim;
  auto rows = [](int64_t begin, int64_t count) { return WeightSlice{WeightSlice::Kind::kRows, begin, count, count}; };
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") {
    return WeightSlice{WeightSlice::Kind::kRows, l.vocab_begin, l.vocab_rows, l.vocab_per_rank};
  }
  if (name.ends_with("self_attn.q_proj.weight") || name.ends_with("self_attn.q_proj.bias")) {
    return rows(l.q_head_begin * d, l.num_q_heads * d);
  }
  if (name.ends_with("self_attn.k_proj.weight") || name.ends_with("self_attn.k_proj.bias") ||
      name.ends_with("self_attn.v_proj.weight") || name.ends_with("self_attn.v_proj.bias")) {
    return rows(l.kv_head_begin * d, l.num_kv_heads * d);
  }
  if (name.ends_with("mlp.gate_proj.weight") || name.ends_with("mlp.up_proj.weight")) {
    return rows(l.ff_begin, l.ff_size);
  }
  if (name.ends_with("self_attn.o_proj.weight")) {
    return WeightSlice{WeightSlice::Kind::kColumns, l.q_head_begin * d, l.num_q_heads * d, 0};
  }
  if (name.ends_with("mlp.down_proj.weight")) return WeightSlice{WeightSlice::Kind::kColumns, l.ff_begin, l.ff_size, 0};
  return {};
}

namespace {

// Makes w the slice of `info`: a view of the mapping when the slice is
// contiguous there (whole tensors, unpadded row ranges), else a copy of just
// the slice's bytes. Returns the checkpoint bytes the slice covers.
uint64_t slice_weight(const SafetensorsFile& file, const TensorInfo& info, const WeightSlice& slice, Weight* w) {
  const std::byte* src = file.data(info);
  const std::size_t element = dtype_size_bytes(info.dtype);
  const int64_t width = info.shape.size() > 1 ? info.num_elements() / info.shape[0] : 1;
  w->dtype = info.dtype;
  switch (slice.kind) {
    case WeightSlice::Kind::kWhole:
      w->shape = info.shape;
      w->view = src;
      return info.end - info.begin;
    case WeightSlice::Kind::kRows: {
      w->shape = info.shape;
      w->shape[0] = slice.padded_rows;
      const auto n_bytes = static_cast<std::size_t>(slice.count * width) * element;
      const std::byte* begin = src + static_cast<std::size_t>(slice.begin * width) * element;
      if (slice.padded_rows == slice.count) {
        w->view = begin;
      } else {
        // Zero rows past the vocabulary's end (the last rank's padding).
        w->owned.assign(static_cast<std::size_t>(slice.padded_rows * width) * element, std::byte{0});
        std::memcpy(w->owned.data(), begin, n_bytes);
      }
      return n_bytes;
    }
    case WeightSlice::Kind::kColumns: {
      const int64_t rows = info.shape[0];
      w->shape = {rows, slice.count};
      const auto row_bytes = static_cast<std::size_t>(slice.count) * element;
      w->owned.resize(static_cast<std::size_t>(rows) * row_bytes);
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(w->owned.data() + static_cast<std::size_t>(r) * row_bytes,
                    src + static_cast<std::size_t>(r * width + slice.begin) * element, row_bytes);
      }
      return static_cast<uint64_t>(rows) * row_bytes;
    }
  }
  return 0;
}

}  // namespace

Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const LoadProgressCallback& progress) {
  return load_model_weights(model_dir, config, ShardLayout::whole(config), progress);
}

Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const ShardLayout& shard, const LoadProgressCallback& progress) {
  ShardSet shards;
  RETURN_IF_ERROR(open_shards(model_dir, &shards));
  const std::vector<WeightSpec> specs = expected_weights(config);

  // Validate everything before reading anything: a wrong shape late in a
  // large model should not cost a full load.
  struct Step {
    const WeightSpec* spec;
    const SafetensorsFile* file;
    const TensorInfo* info;
    WeightSlice slice;
  };
  std::vector<Step> plan;
  uint64_t bytes_total = 0;
  for (const WeightSpec& spec : specs) {
    auto it = shards.by_tensor.find(spec.name);
    if (it == shards.by_tensor.end()) {
      if (!spec.required) continue;
      return Status::invalid_argument(spec.name + ": missing from the checkpoint (expected shape " +
                                      shape_to_string(spec.shape) + ")");
    }
    const TensorInfo* info = it->second->find(spec.name);
    if (info->shape != spec.shape) {
      return Status::invalid_argument(spec.name + ": shape " + shape_to_string(info->shape) + ", expected " +
                                      shape_to_string(spec.shape));
    }
    if (!dtype_is_float_weight(info->dtype)) {
      return Status::invalid_argument(spec.name + ": dtype " + std::string(dtype_name(info->dtype)) +
                                      " is not a float weight type (F32, F16, BF16)");
    }
    Step step{&spec, it->second, info, weight_slice(spec.name, config, shard)};
    bytes_total += step.slice.kind == WeightSlice::Kind::kWhole
                       ? info->end - info->begin
                       : (info->end - info->begin) / static_cast<uint64_t>(shard.world_size);
    plan.push_back(step);
  }

  ModelWeights weights;
  for (const auto& file : shards.files) weights.keep_alive(file);
  uint64_t bytes_done = 0;
  for (const Step& step : plan) {
    Weight w;
    const uint64_t read = slice_weight(*step.file, *step.info, step.slice, &w);
    weights.put(step.spec->name, std::move(w));
    bytes_done = std::min(bytes_total, bytes_done + read);
    if (progress) progress(LoadProgress{bytes_done, bytes_total, step.spec->name});
  }
  if (progress && bytes_done != bytes_total) progress(LoadProgress{bytes_total, bytes_total, {}});
  return weights;
}

}  // namespace llmctl::model
