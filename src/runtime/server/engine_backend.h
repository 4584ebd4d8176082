// EngineBackend: GenerationBackend over llmctl's engine. One engine thread
// owns the Engine (and so the KV cache); submit()/cancel() put work in an
// inbox it drains between steps; sinks are called from the engine thread.
// A failing step() marks the backend dead (/health turns 503) and ends every
// request with kError.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/engine/engine.h"
#include "runtime/server/generation_backend.h"

namespace llmctl::server {

class EngineBackend final : public GenerationBackend {
 public:
  EngineBackend();
  ~EngineBackend() override;
  // Hands over a loaded engine and starts the engine thread; state() turns
  // kReady. Before this, state() is kLoading (or kDead after mark_dead()).
  void start(std::unique_ptr<engine::Engine> engine, std::vector<int32_t> eos_ids);
  // Stops the engine thread and destroys the engine (a dead one, whose
  // requests have failed); start() may then be called again with a new
  // engine (serve --restart). Not concurrent with start().
  void retire();
  // From any thread. The first reason given is kept; requests the engine
  // fails after this carry it.
  void mark_dead(const std::string& reason = {});

  Status submit(GenerationRequest request, EventSink sink) override;
  void cancel(uint64_t request_id) override;
  BackendStats stats() const override;
  BackendState state() const override { return state_; }
  std::string failure() const override;

 private:
  struct Pending {
    GenerationRequest request;
    EventSink sink;
  };
  struct Live {
    uint64_t server_id = 0;
    EventSink sink;
    std::vector<int32_t> stop_ids;  // eos + stop_token_ids, to name the stop token
  };
  void run();
  // Ends every request the engine holds or has not yet taken with an error
  // event saying `why`. On the engine thread, or once it has been joined.
  void fail_all(const std::string& why);

  std::unique_ptr<engine::Engine> engine_;  // engine thread only
  std::vector<int32_t> eos_ids_;
  std::map<uint64_t, Live> live_;             // engine id -> request; engine thread only
  std::map<uint64_t, uint64_t> engine_id_of_;  // server id -> engine id; engine thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> inbox_;     // guarded by mu_
  std::vector<uint64_t> cancels_;  // guarded by mu_ (server ids)
  BackendStats stats_;             // guarded by mu_
  bool stop_ = false;              // guarded by mu_
  std::string failure_;            // guarded by mu_
  std::atomic<BackendState> state_{BackendState::kLoading};
  std::thread thread_;
};

}  // namespace llmctl::server
