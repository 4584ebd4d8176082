// Built into libllmctl_gloo.so with the shared C++ runtime, so Gloo's
// exceptions are thrown and caught by the same runtime (see gloo_shim.h).
#include "runtime/dist/gloo_shim.h"

#include <cstring>
#include <map>
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

// An algorithm made once and run again: its buffers stay registered, so a
// peer that runs ahead writes straight into them instead of making Gloo's
// device thread spin on a slot that does not exist yet.
struct CachedAllreduce {
  std::vector<float> buffer;
  std::unique_ptr<gloo::AllreduceRingChunked<float>> algorithm;
};
struct CachedAllgather {
  std::vector<float> in;
  std::vector<float> out;
  std::unique_ptr<gloo::AllgatherRing<float>> algorithm;
};

struct LlmctlGlooGroup {
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  // Keyed by count. Every rank makes the same calls, so every rank fills and
  // clears these in the same order and the algorithms' slots agree.
  std::map<int, CachedAllreduce> allreduce;
  std::map<int, CachedAllgather> allgather;
  std::size_t cached_bytes = 0;
  std::unique_ptr<gloo::BarrierAllToAll> barrier;

  ~LlmctlGlooGroup() {
    allreduce.clear();
    allgather.clear();
    barrier.reset();
    // Pairs before the device whose loop thread serves them.
    context.reset();
    device.reset();
  }

  // Past this the caches start over (same point on every rank).
  static constexpr std::size_t kMaxCachedBytes = std::size_t{256} << 20;
  void make_room(std::size_t bytes) {
    if (cached_bytes + bytes <= kMaxCachedBytes) return;
    allreduce.clear();
    allgather.clear();
    cached_bytes = 0;
  }
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

// Gloo's classic algorithms over bound buffers: in this Gloo (Debian's 2022
// snapshot) a transfer in flight into or out of an *unbound* buffer is not
// told when its socket fails, so gloo::allreduce and friends wait out the
// whole time-out after a peer dies; bound buffers are told at once.
int llmctl_gloo_all_reduce_sum_f32(LlmctlGlooGroup* group, float* data, int count, char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    auto it = group->allreduce.find(count);
    if (it == group->allreduce.end()) {
      std::size_t bytes = static_cast<std::size_t>(count) * sizeof(float) * 2;
      group->make_room(bytes);
      CachedAllreduce made;
      made.buffer.resize(static_cast<std::size_t>(count));
      made.algorithm =
          std::make_unique<gloo::AllreduceRingChunked<float>>(group->context, std::vector<float*>{made.buffer.data()}, count);
      it = group->allreduce.emplace(count, std::move(made)).first;
      group->cached_bytes += bytes;
    }
    std::copy(data, data + count, it->second.buffer.data());
    it->second.algorithm->run();
    std::copy(it->second.buffer.begin(), it->second.buffer.end(), data);
  });
}

int llmctl_gloo_all_gather_f32(LlmctlGlooGroup* group, const float* in, float* out, int count, char* err,
                               size_t err_size) {
  return guarded(err, err_size, [&] {
    auto it = group->allgather.find(count);
    if (it == group->allgather.end()) {
      std::size_t total = static_cast<std::size_t>(count) * static_cast<std::size_t>(group->context->size);
      std::size_t bytes = (static_cast<std::size_t>(count) + total) * sizeof(float);
      group->make_room(bytes);
      CachedAllgather made;
      made.in.resize(static_cast<std::size_t>(count));
      made.out.resize(total);
      made.algorithm = std::make_unique<gloo::AllgatherRing<float>>(
          group->context, std::vector<const float*>{made.in.data()}, made.out.data(), count);
      it = group->allgather.emplace(count, std::move(made)).first;
      group->cached_bytes += bytes;
    }
    std::copy(in, in + count, it->second.in.data());
    it->second.algorithm->run();
    std::copy(it->second.out.begin(), it->second.out.end(), out);
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
    if (!group->barrier) group->barrier = std::make_unique<gloo::BarrierAllToAll>(group->context);
    group->barrier->run();
  });
}

void llmctl_gloo_close(LlmctlGlooGroup* group) {
  if (group == nullptr) return;
  try {
    delete group;
  } catch (...) {
    // Closing sockets of a broken group: nothing left to report to.
  }
}

}  // extern "C"
