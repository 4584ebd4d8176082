#include "runtime/engine/rank_worker.h"

#include "common/logging.h"
#include "kernels/backend_factory.h"
#include "runtime/dist/communicator.h"
#include "runtime/engine/engine_loader.h"
#include "runtime/engine/model_runner.h"

namespace llmctl::engine {

Status serve_rank(std::unique_ptr<kernels::Backend> backend, const model::ModelConfig& config,
                  model::ModelWeights weights, dist::Communicator& comm) {
  const std::string who = "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.world_size());
  std::string bytes;
  if (Status st = comm.broadcast_bytes(bytes, 0); !st.is_ok()) {
    return st.with_context(who + ": waiting for rank 0's KV cache size");
  }
  ASSIGN_OR_RETURN(RankMessage init, RankMessage::decode(bytes));
  if (init.kind != RankMessage::Kind::kInit) {
    return Status::internal(who + ": expected rank 0's init message first");
  }
  ASSIGN_OR_RETURN(auto runner,
                   ModelRunner::create(std::move(backend), config, weights, init.num_blocks, init.block_size, &comm));
  weights = model::ModelWeights();
  for (;;) {
    if (Status st = comm.broadcast_bytes(bytes, 0); !st.is_ok()) {
      return st.with_context(who + ": waiting for rank 0's next step");
    }
    ASSIGN_OR_RETURN(RankMessage msg, RankMessage::decode(bytes));
    if (msg.kind == RankMessage::Kind::kStop) return Status::ok();
    if (msg.kind == RankMessage::Kind::kInit) {
      // Rank 0 sized the KV cache after its profiling step.
      if (Status st = runner->resize_kv(msg.num_blocks); !st.is_ok()) return st.with_context(who);
      continue;
    }
    if (msg.kind == RankMessage::Kind::kGraphs) {
      // Rank 0 replays decode graphs; eager steps here would issue the same
      // collectives, so a rank that cannot capture still keeps in step.
      if (Status st = runner->enable_decode_graphs(msg.max_num_seqs, msg.max_model_len); !st.is_ok()) {
        logger("engine")->warn("{}: decode steps run eagerly: {}", who, st.message());
      }
      continue;
    }
    auto logits = runner->execute(msg.batch);
    if (!logits.is_ok()) return logits.status().with_context(who);
  }
}

Status run_rank_worker(const std::string& model_dir, const EngineConfig& config, dist::Communicator& comm,
                       const model::LoadProgressCallback& progress) {
  ASSIGN_OR_RETURN(model::ModelConfig mc, model::load_model_config(model_dir));
  ASSIGN_OR_RETURN(model::ShardLayout layout, model::ShardLayout::make(mc, comm.rank(), comm.world_size()));
  auto weights = load_rank_weights(model_dir, mc, layout, config.load_format, progress, config.num_threads);
  if (!weights.is_ok()) return weights.status().with_context(model_dir);
  ASSIGN_OR_RETURN(auto backend, kernels::make_backend(config.device, config.num_threads, config.cuda_stream));
  return serve_rank(std::move(backend), mc, std::move(weights).value(), comm);
}

}  // namespace llmctl::engine
