#include "runtime/model/model_weights.h"

#include <algorithm>
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

uint64_t ModelWeights::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, w] : weights_) n += w.data.size() * sizeof(float);
  return n;
}

namespace {

// The shard files of a model folder, opened, and which file holds each tensor.
struct ShardSet {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
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
    return Status::not_found(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const std::string& shard : shard_names) {
    ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(dir + "/" + shard));
    set->files.push_back(std::make_unique<SafetensorsFile>(std::move(file)));
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

Result<ModelWeights> load_model_weights(const std::string& model_dir, const ModelConfig& config,
                                        const LoadProgressCallback& progress) {
  ShardSet shards;
  RETURN_IF_ERROR(open_shards(model_dir, &shards));
  const std::vector<WeightSpec> specs = expected_weights(config);

  // Validate everything before converting anything: a wrong shape late in a
  // large model should not cost a full load.
  std::vector<std::pair<const WeightSpec*, std::pair<const SafetensorsFile*, const TensorInfo*>>> plan;
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
    bytes_total += info->end - info->begin;
    plan.push_back({&spec, {it->second, info}});
  }

  ModelWeights weights;
  uint64_t bytes_done = 0;
  for (const auto& [spec, loc] : plan) {
    const auto& [file, info] = loc;
    Weight w;
    w.shape = info->shape;
    w.data.resize(info->num_elements());
    convert_to_f32(info->dtype, file->data(*info), w.data.size(), w.data.data());
    weights.put(spec->name, std::move(w));
    bytes_done += info->end - info->begin;
    if (progress) progress(LoadProgress{bytes_done, bytes_total, spec->name});
  }
  return weights;
}

}  // namespace llmctl::model
