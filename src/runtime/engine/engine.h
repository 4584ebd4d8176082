// The inference engine: requests in, tokens out, one step at a time.
// step() = Scheduler::schedule() -> ModelRunner::launch() ->
// Scheduler::postprocess() -> ModelRunner::wait() -> Sampler per sequence ->
// stop checks; with async scheduling the next step is scheduled before the
// wait and launched before step() returns. After a step() error the engine
// is not stepped again. Not thread-safe: one thread (the engine thread)
// calls every method; servers post work to it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "kernels/kernels.h"
#include "runtime/engine/model_runner.h"
#include "runtime/engine/sampling_params.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/sequence.h"
#include "runtime/engine/step_batch.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_weights.h"

namespace llmctl::dist {
class Communicator;
}

namespace llmctl::engine {

// Text of a sequence's output ids (for stop strings and output text); the
// engine works on ids alone when none is given.
using Detokenizer = std::function<std::string(std::span<const int32_t>)>;

struct EngineConfig {
  SchedulerConfig scheduler;   // num_blocks 0: derived from kv_cache_bytes
  // 0: on a device that reports its memory (CUDA), what
  // gpu_memory_utilization leaves after a profiling step
  // (kv_cache_budget.h); on the CPU, room for max_num_seqs sequences of
  // max_model_len (capped at 4 GiB).
  int64_t kv_cache_bytes = 0;
  double gpu_memory_utilization = 0.9;
  // CUDA: decode steps replay CUDA graphs per batch bucket unless this is
  // set (vLLM's --enforce-eager).
  bool enforce_eager = false;
  // Schedules step N+1 while the device runs step N (vLLM's
  // --async-scheduling): step() returns step N's outputs once step N+1 is
  // launched, so the next schedule and the outputs are host work hidden
  // behind the device. A request may join its first batch a step
  // later; otherwise each sequence is computed as without.
  bool async_scheduling = false;
  // "auto": the folder's safetensors; "dummy": seeded random weights of the
  // folder's config.json shape (model/random_weights.h), for benchmarks.
  std::string load_format = "auto";
  int num_threads = 0;         // CPU backend threads; 0: all cores
  std::string device = "cpu";  // cpu, cuda, cuda:N, auto (kernels/backend_factory.h)
  // The tensor-parallel group this engine is rank 0 of (nullptr: the whole
  // model in this process). Not owned; outlives the engine. The other ranks
  // run run_rank_worker() (rank_worker.h).
  dist::Communicator* communicator = nullptr;
  // For a CUDA device, the stream to enqueue on (not owned): a
  // tensor-parallel rank's group stream (Communicator::stream()), so its
  // collectives and kernels run in order; null: a stream of the backend's own.
  void* cuda_stream = nullptr;
};

struct CompletionOutput {
  int index = 0;
  std::vector<int32_t> token_ids;      // all output ids so far
  std::vector<int32_t> new_token_ids;  // those added by this step
  std::string text;                    // with a detokenizer: output text (stop string cut)
  FinishReason finish_reason = FinishReason::kNone;
  std::vector<TokenLogprob> logprobs;  // when requested
  double cumulative_logprob = 0;
};

struct RequestOutput {
  uint64_t request_id = 0;
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;
  std::vector<CompletionOutput> outputs;  // n entries, by index
  bool finished = false;
};

class Engine {
 public:
  // Builds an engine over already loaded weights. eos_ids: ids that end a
  // sequence unless ignore_eos.
  // With ec.communicator, `weights` are rank 0's slices.
  static Result<std::unique_ptr<Engine>> create(std::unique_ptr<kernels::Backend> backend,
                                                const model::ModelConfig& config, const model::ModelWeights& weights,
                                                EngineConfig engine_config, std::vector<int32_t> eos_ids,
                                                Detokenizer detokenizer = {});

  // Decode steps replayed as CUDA graphs so far (0 when running eagerly).
  int64_t decode_graph_replays() const;
  int32_t kv_cache_blocks() const { return scheduler_->config().num_blocks; }

  // Validates and queues a request; returns its id.
  Result<uint64_t> add_request(std::vector<int32_t> prompt_ids, SamplingParams params);
  // Finishes the request now (reason "abort") and frees its blocks; the next
  // step() reports it. Unknown ids are ignored.
  void abort_request(uint64_t request_id);

  // Runs one scheduling step; returns the requests that progressed or
  // finished. With async_scheduling a step stays in flight between calls:
  // the call waits for it, launches the next one, then returns its outputs.
  Result<std::vector<RequestOutput>> step();
  bool has_unfinished() const { return !requests_.empty() || in_flight_.has_value(); }
  // Async scheduling: whether a launched step awaits the next step(), and
  // how many prepared batches were rebuilt because a sequence in them
  // stopped (eos, a stop token or string) in the step before.
  bool step_in_flight() const { return in_flight_.has_value(); }
  int64_t rebuilt_batches() const { return rebuilt_batches_; }

  const Scheduler& scheduler() const { return *scheduler_; }
  const model::ModelConfig& model_config() const { return config_; }

 private:
  struct Request {
    uint64_t id = 0;
    SamplingParams params;
    std::vector<std::unique_ptr<Sequence>> seqs;
    std::vector<std::size_t> reported_tokens;  // output ids already reported, per seq
    bool dirty = false;  // progressed since the last report
  };

  // A step launched on the runner and not yet waited for, with how its
  // rows are drawn.
  struct InFlight {
    SchedulerOutput out;
    bool greedy = false, on_device = false;
  };

  Engine() = default;
  // Launches `batch` (built from `out`), then advances the scheduler past it.
  Status launch(SchedulerOutput out, StepBatch batch);
  // Waits for the step in flight and gives its sequences their new tokens.
  Status complete();
  // Async scheduling, while a step runs: a placeholder token for each of its
  // sequences that samples and goes on, and the next step scheduled around
  // them. Returns the next step and its batch (empty: nothing to run).
  std::pair<SchedulerOutput, StepBatch> schedule_ahead();
  // After complete(): the prepared step without the sequences that stopped,
  // its placeholders replaced by the sampled ids.
  StepBatch settle(SchedulerOutput& next, StepBatch batch);
  bool ends_by_length(const Sequence& seq) const;
  std::vector<RequestOutput> take_outputs();
  void check_stop(Sequence& seq, Request& req);
  void finish(Sequence& seq, FinishReason reason);

  model::ModelConfig config_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::vector<int32_t> eos_ids_;
  Detokenizer detokenizer_;
  std::map<uint64_t, std::unique_ptr<Request>> requests_;
  std::map<uint64_t, std::pair<Request*, int>> seq_owner_;  // seq id -> request, index
  uint64_t next_request_id_ = 1;
  uint64_t next_seq_id_ = 1;
  bool async_scheduling_ = false;
  std::optional<InFlight> in_flight_;
  int64_t rebuilt_batches_ = 0;
  double runner_ms_ = 0;  // this step's time inside launch() and wait()
};

}  // namespace llmctl::engine
