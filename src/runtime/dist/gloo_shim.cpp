// Built into libllmctl_gloo.so with the shared C++ runtime, so Gloo's
// exceptions are thrown and caught by the same runtime (see gloo_shim.h).
#include "runtime/dist/gloo_shim.h"

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <gloo/allgather_ring.h>
#include <gloo/allreduce_ring_chunked.h>
#include <gloo/barrier_all_to_all.h>
#include <gloo/broadcast_one_to_all.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

struct LlmctlGlooGroup {
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
};

namespace {

// A store callback failed; the caller already holds the reason.
struct StoreFailed {};

class CallbackStore final : public gloo::rendezvous::Store {
 public:
  CallbackStore(const LlmctlGlooStore& store, std::string prefix, std::chrono::milliseconds timeout)
      : store_(store), prefix_(std::move(prefix)), timeout_(timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    std::string full = prefix_ + key;
    if (store_.set(store_.ctx, full.c_str(), data.data(), data.size()) != 0) throw StoreFailed{};
  }
  std::vector<char> get(const std::string& key) override { return fetch(key, timeout_); }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    for (const auto& key : keys) fetch(key, timeout);
  }

 private:
  std::vector<char> fetch(const std::string& key, std::chrono::milliseconds timeout) {
    std::string full = prefix_ + key;
    std::vector<char> value;
    auto sink = [](void* ctx, const char* data, size_t size) {
      static_cast<std::vector<char>*>(ctx)->assign(data, data + size);
    };
    if (store_.get(store_.ctx, full.c_str(), static_cast<long long>(timeout.count()), sink, &value) != 0) {
      throw StoreFailed{};
    }
    return value;
  }

  LlmctlGlooStore store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
};

void write_error(char* err, size_t err_size, const char* message) {
  if (err == nullptr || err_size == 0) return;
  std::strncpy(err, message, err_size - 1);
  err[err_size - 1] = '\0';
}

template <typename F>
int guarded(char* err, size_t err_size, F&& body) {
  try {
    body();
    return kLlmctlGlooOk;
  } catch (const StoreFailed&) {
    write_error(err, err_size, "store");
    return kLlmctlGlooStoreError;
  } catch (const std::exception& e) {
    write_error(err, err_size, e.what());
  } catch (...) {
    write_error(err, err_size, "unknown exception");
  }
  return kLlmctlGlooError;
}

}  // namespace

extern "C" {

int llmctl_gloo_connect(int rank, int size, const char* address, const char* key_prefix, long long timeout_ms,
                        long long store_timeout_ms, const LlmctlGlooStore* store, LlmctlGlooGroup** group,
                        char* err, size_t err_size) {
  *group = nullptr;
  auto made = std::make_unique<LlmctlGlooGroup>();
  int rc = guarded(err, err_size, [&] {
    gloo::transport::tcp::attr attr;
    attr.hostname = address;
    made->device = gloo::transport::tcp::CreateDevice(attr);
    made->context = std::make_shared<gloo::rendezvous::Context>(rank, size);
    // Pairs take the context's time-out when made; it bounds every transfer.
    made->context->setTimeout(std::chrono::milliseconds(timeout_ms));
    CallbackStore adapter(*store, key_prefix, std::chrono::milliseconds(store_timeout_ms));
    made->context->connectFullMesh(adapter, made->device);
  });
  if (rc == kLlmctlGlooOk) *group = made.release();
  return rc;
}

// Gloo's classic algorithms over bound buffers, made per call: in this Gloo
// (Debian's 2022 snapshot) a transfer in flight into or out of an *unbound*
// buffer is not told when its socket fails, so gloo::allreduce and friends
// wait out the whole time-out after a peer dies; bound buffers are told at
// once. Making an algorithm only registers buffers locally.
int llmctl_gloo_all_reduce_sum_f32(LlmctlGlooGroup* group, float* data, int count, char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    gloo::AllreduceRingChunked<float> algorithm(group->context, {data}, count);
    algorithm.run();
  });
}

int llmctl_gloo_all_gather_f32(LlmctlGlooGroup* group, const float* in, float* out, int count, char* err,
                               size_t err_size) {
  return guarded(err, err_size, [&] {
    gloo::AllgatherRing<float> algorithm(group->context, {in}, out, count);
    algorithm.run();
  });
}

int llmctl_gloo_broadcast(LlmctlGlooGroup* group, void* data, size_t size, int root, char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    gloo::BroadcastOneToAll<unsigned char> algorithm(group->context, {static_cast<unsigned char*>(data)}, size, root);
    algorithm.run();
  });
}

int llmctl_gloo_barrier(LlmctlGlooGroup* group, char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    gloo::BarrierAllToAll algorithm(group->context);
    algorithm.run();
  });
}

void llmctl_gloo_close(LlmctlGlooGroup* group) {
  if (group == nullptr) return;
  try {
    // Pairs before the device whose loop thread serves them.
    group->context.reset();
    group->device.reset();
  } catch (...) {
    // Closing sockets of a broken group: nothing left to report to.
  }
  delete group;
}

}  // extern "C"
