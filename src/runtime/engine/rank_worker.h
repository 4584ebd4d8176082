// A tensor-parallel rank other than 0: loads its shard of the model, then
// executes every step rank 0 broadcasts until rank 0 says stop. It runs no
// scheduler and samples nothing; its KV cache mirrors rank 0's block layout
// (rank 0 sends num_blocks and block_size first).
#pragma once

#include <string>

#include "common/status.h"
#include "runtime/engine/engine.h"
#include "runtime/model/model_weights.h"

namespace llmctl::dist {
class Communicator;
}

namespace llmctl::engine {

// Loads <model_dir>'s slices for comm.rank() and serves steps. Returns OK
// when rank 0 stops the group; an error when a collective fails (rank 0 gone
// or silent past the group's timeout) or the model does not load.
Status run_rank_worker(const std::string& model_dir, const EngineConfig& config, dist::Communicator& comm,
                       const model::LoadProgressCallback& progress = {});

// The step loop alone, over an already loaded shard (tests drive it in
// threads). The weights are released once the backend holds its copy: host
// memory they own (column slices, --load-format dummy) would otherwise stay
// taken for the whole run.
Status serve_rank(std::unique_ptr<kernels::Backend> backend, const model::ModelConfig& config,
                  model::ModelWeights weights, dist::Communicator& comm);

}  // namespace llmctl::engine
