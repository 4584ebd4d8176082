#include "runtime/engine/engine_loader.h"

#include <algorithm>
#include <chrono>

#include "common/logging.h"
#include "kernels/backend_factory.h"
#include "runtime/dist/communicator.h"
#include "runtime/model/random_weights.h"

namespace llmctl::engine {

Result<model::ModelWeights> load_rank_weights(const std::string& model_dir, const model::ModelConfig& config,
                                              const model::ShardLayout& layout, const std::string& load_format,
                                              const model::LoadProgressCallback& progress, int threads) {
  if (load_format == "auto") return model::load_model_weights(model_dir, config, layout, progress);
  if (load_format == "dummy") {
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(model::ModelWeights weights,
                     model::random_model_weights(config, layout, /*seed=*/0, progress, threads));
    logger("engine")->info("weights: random bf16 values ({:.2f} GB, --load-format dummy) made in {:.2f} s",
                           static_cast<double>(weights.total_bytes()) / 1e9,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return weights;
  }
  return Status::invalid_argument("--load-format " + load_format + ": expected auto or dummy");
}

Result<LoadedEngine> load_engine(const std::string& model_dir, EngineConfig config, Detokenizer detokenizer,
                                 const model::LoadProgressCallback& progress,
                                 const std::vector<int32_t>& extra_eos_ids) {
  ASSIGN_OR_RETURN(model::ModelConfig mc, model::load_model_config(model_dir));
  LoadedEngine out;
  ASSIGN_OR_RETURN(out.generation, model::load_generation_config(model_dir));
  auto add_eos = [&](int64_t id) {
    if (id >= 0 && id < mc.vocab_size &&
        std::find(out.eos_ids.begin(), out.eos_ids.end(), static_cast<int32_t>(id)) == out.eos_ids.end()) {
      out.eos_ids.push_back(static_cast<int32_t>(id));
    }
  };
  for (int64_t id : mc.eos_token_ids) add_eos(id);
  for (int64_t id : out.generation.eos_token_ids) add_eos(id);
  for (int32_t id : extra_eos_ids) add_eos(id);
  model::ShardLayout layout = model::ShardLayout::whole(mc);
  if (config.communicator != nullptr) {
    ASSIGN_OR_RETURN(layout, model::ShardLayout::make(mc, config.communicator->rank(), config.communicator->world_size()));
  }
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto phase_start = Clock::now();
  // Maps and checks the files (the bytes are read when the backend uploads
  // them), or makes random weights.
  ASSIGN_OR_RETURN(model::ModelWeights weights,
                   load_rank_weights(model_dir, mc, layout, config.load_format, progress, config.num_threads));
  const double map_seconds = seconds_since(phase_start);
  if (config.scheduler.max_model_len <= 0 || config.scheduler.max_model_len > mc.max_position_embeddings) {
    config.scheduler.max_model_len = static_cast<int32_t>(mc.max_position_embeddings);
  }
  phase_start = Clock::now();
  ASSIGN_OR_RETURN(auto backend, kernels::make_backend(config.device, config.num_threads, config.cuda_stream));
  logger("engine")->info("start-up: {} checked in {:.2f} s; {} backend up in {:.2f} s", model_dir, map_seconds,
                         backend->name(), seconds_since(phase_start));
  auto created = Engine::create(std::move(backend), mc, weights, config, out.eos_ids, std::move(detokenizer));
  if (!created.is_ok()) return created.status().with_context(model_dir);
  out.engine = std::move(created).value();
  return out;
}

}  // namespace llmctl::engine
