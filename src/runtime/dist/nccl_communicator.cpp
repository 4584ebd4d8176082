// NCCL runs non-blocking (config.blocking = 0): every call returns at once,
// possibly with ncclInProgress, and ncclCommGetAsyncError reports progress
// and failures, so no wait here can outlast the group's time-out; on time-out
// the communicator is aborted (ncclCommAbort), which frees any kernel stuck
// waiting on a dead peer.
#include "runtime/dist/nccl_communicator.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nccl.h>

#include "runtime/dist/group_failure.h"
#include "runtime/dist/liveness_socket.h"
#include "runtime/dist/rank_endpoint.h"

namespace llmctl::dist {
namespace {

using Clock = std::chrono::steady_clock;

std::string nccl_error(ncclResult_t r, ncclComm_t comm) {
  std::string text = ncclGetErrorString(r);
  if (comm != nullptr) {
    const char* last = ncclGetLastError(comm);
    if (last != nullptr && *last != '\0') text += std::string(": ") + last;
  }
  return text;
}

class NcclGroup final : public NcclCommunicator {
 public:
  NcclGroup(NcclOptions options, std::string store_name, std::vector<RankEndpoint> endpoints, LivenessSocket liveness)
      : options_(std::move(options)),
        store_name_(std::move(store_name)),
        endpoints_(std::move(endpoints)),
        liveness_(std::move(liveness)) {}

  ~NcclGroup() override {
    if (timing_) {
      collect_timings();
      std::fprintf(stderr, "llmctl step timing: %s: %lld all-reduces of %.1f MiB in total, %.1f ms on the GPU\n",
                   self().c_str(), static_cast<long long>(reduce_calls_),
                   static_cast<double>(reduce_bytes_) / (1 << 20), reduce_ms_);
      for (auto& [a, b] : pending_) {
        cudaEventDestroy(a);
        cudaEventDestroy(b);
      }
    }
    if (comm_ != nullptr) {
      // Finalize waits for the peers; bounded, and abort frees it otherwise.
      bool finished = false;
      ncclResult_t r = ncclCommFinalize(comm_);
      if (r == ncclSuccess || r == ncclInProgress) {
        auto deadline = Clock::now() + options_.timeout;
        while (Clock::now() < deadline) {
          ncclResult_t state = ncclInProgress;
          if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess || (state != ncclInProgress && state != ncclSuccess)) {
            break;
          }
          if (state == ncclSuccess) {
            finished = true;
            break;
          }
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
      }
      if (finished) {
        ncclCommDestroy(comm_);
      } else {
        ncclCommAbort(comm_);
      }
    }
    if (scratch_ != nullptr) cudaFree(scratch_);
    if (own_stream_ && stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status init(const ncclUniqueId& id, Clock::time_point deadline) {
    if (cudaError_t e = cudaSetDevice(options_.device); e != cudaSuccess) {
      return Status::unavailable(fmt::format("{}: cudaSetDevice({}): {}", self(), options_.device, cudaGetErrorString(e)));
    }
    if (options_.stream != nullptr) {
      stream_ = static_cast<cudaStream_t>(options_.stream);
    } else {
      if (cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking); e != cudaSuccess) {
        return Status::unavailable(fmt::format("{}: creating a stream: {}", self(), cudaGetErrorString(e)));
      }
      own_stream_ = true;
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&comm_, options_.world_size, id, options_.rank, &config);
    if (r != ncclSuccess && r != ncclInProgress) return fail("ncclCommInitRankConfig", nccl_error(r, comm_), false);
    return wait_async("connecting the group", deadline);
  }

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  void* stream() const override { return stream_; }

  Status all_reduce_sum(float* data, int64_t count) override {
    if (!broken_.is_ok()) return broken_;
    if (count <= 0) return count == 0 ? Status::ok() : Status::invalid_argument(fmt::format("{}: count {} < 0", self(), count));
    cudaEvent_t start = nullptr, stop = nullptr;
    // A call captured into a decode graph runs at each replay, not now: its
    // events would never complete, so graph steps go untimed.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    const bool capturing = cudaStreamIsCapturing(stream_, &capture) == cudaSuccess && capture != cudaStreamCaptureStatusNone;
    if (timing_ && !capturing && cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess) {
      cudaEventRecord(start, stream_);
    }
    Status st = enqueue("all_reduce_sum", count, [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat32, ncclSum, comm_, stream_);
    });
    if (stop != nullptr) {
      cudaEventRecord(stop, stream_);
      pending_.emplace_back(start, stop);
      ++reduce_calls_;
      reduce_bytes_ += count * static_cast<int64_t>(sizeof(float));
    }
    return st;
  }

  Status all_gather(const float* in, float* out, int64_t count) override {
    if (!broken_.is_ok()) return broken_;
    if (count <= 0) return count == 0 ? Status::ok() : Status::invalid_argument(fmt::format("{}: count {} < 0", self(), count));
    return enqueue("all_gather", count, [&] {
      return ncclAllGather(in, out, static_cast<size_t>(count), ncclFloat32, comm_, stream_);
    });
  }

  Status broadcast_bytes(std::string& bytes, int root) override {
    if (!broken_.is_ok()) return broken_;
    if (root < 0 || root >= options_.world_size) {
      return Status::invalid_argument(fmt::format("{}: broadcast_bytes: root {} outside 0..{}", self(), root,
                                                  options_.world_size - 1));
    }
    std::int64_t size = static_cast<std::int64_t>(bytes.size());
    RETURN_IF_ERROR(broadcast_host(&size, sizeof(size), root));
    if (options_.rank != root) bytes.resize(static_cast<std::size_t>(size));
    if (size == 0) return Status::ok();
    return broadcast_host(bytes.data(), bytes.size(), root);
  }

  Status barrier() override {
    if (!broken_.is_ok()) return broken_;
    RETURN_IF_ERROR(ensure_scratch(sizeof(float)));
    RETURN_IF_ERROR(enqueue("barrier", 1, [&] {
      return ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_);
    }));
    return synchronize();
  }

  Status synchronize() override {
    if (!broken_.is_ok()) return broken_;
    auto deadline = Clock::now() + options_.timeout;
    const auto spin_until = Clock::now() + std::chrono::microseconds(500);
    while (true) {
      cudaError_t e = cudaStreamQuery(stream_);
      if (e == cudaSuccess) {
        if (timing_) collect_timings();
        return Status::ok();
      }
      if (e != cudaErrorNotReady) return fail("synchronize", cudaGetErrorString(e), false);
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      if (state != ncclSuccess && state != ncclInProgress) return fail("synchronize", nccl_error(state, comm_), false);
      const auto now = Clock::now();
      if (now >= deadline) return fail("synchronize", "the stream did not finish", true);
      if (now < spin_until) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  std::string self() const { return describe_self(options_.group, endpoints_[static_cast<std::size_t>(options_.rank)]); }

  // Names the peer, aborts the communicator; every later call returns this.
  Status fail(const std::string& op, const std::string& detail, bool timed_out) {
    GroupFailure failure{self(), options_.rank, &endpoints_, options_.timeout, options_.group, store_name_, "nccl"};
    broken_ = describe_group_failure(failure, op, detail, timed_out);
    if (comm_ != nullptr) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    return broken_;
  }

 private:
  // Adds up the all-reduces whose end event has passed (after a synchronize, all).
  void collect_timings() {
    std::size_t done = 0;
    for (; done < pending_.size(); ++done) {
      auto [a, b] = pending_[done];
      if (cudaEventQuery(b) != cudaSuccess) break;
      float ms = 0;
      if (cudaEventElapsedTime(&ms, a, b) == cudaSuccess) reduce_ms_ += ms;
      cudaEventDestroy(a);
      cudaEventDestroy(b);
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  }

  // Non-blocking NCCL may answer ncclInProgress until the call is enqueued.
  template <typename F>
  Status enqueue(const char* op, int64_t count, F&& call) {
    ncclResult_t r = call();
    if (r == ncclSuccess) return Status::ok();
    std::string what = fmt::format("{} of {} floats", op, count);
    if (r != ncclInProgress) return fail(what, nccl_error(r, comm_), false);
    return wait_async(what, Clock::now() + options_.timeout);
  }

  Status wait_async(const std::string& op, Clock::time_point deadline) {
    // A collective on a non-blocking communicator usually answers
    // ncclInProgress and is enqueued microseconds later; the next kernel
    // may only be launched after that, so the first millisecond spins (a
    // 100 us sleep per call was most of a tensor-parallel step's host time).
    const auto spin_until = Clock::now() + std::chrono::milliseconds(1);
    while (true) {
      ncclResult_t state = ncclSuccess;
      ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
      if (r != ncclSuccess) return fail(op, nccl_error(r, comm_), false);
      if (state == ncclSuccess) return Status::ok();
      if (state != ncclInProgress) return fail(op, nccl_error(state, comm_), false);
      const auto now = Clock::now();
      if (now >= deadline) return fail(op, "still in progress", true);
      if (now < spin_until) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
  }

  Status ensure_scratch(std::size_t bytes) {
    if (scratch_bytes_ >= bytes) return Status::ok();
    if (scratch_ != nullptr) cudaFree(scratch_);
    scratch_ = nullptr;
    scratch_bytes_ = 0;
    if (cudaError_t e = cudaMalloc(&scratch_, bytes); e != cudaSuccess) {
      return Status::unavailable(fmt::format("{}: cudaMalloc of {} bytes: {}", self(), bytes, cudaGetErrorString(e)));
    }
    scratch_bytes_ = bytes;
    return Status::ok();
  }

  // Host bytes through a device staging buffer (NCCL moves device memory).
  Status broadcast_host(void* data, std::size_t size, int root) {
    RETURN_IF_ERROR(ensure_scratch(size));
    if (options_.rank == root) {
      if (cudaError_t e = cudaMemcpyAsync(scratch_, data, size, cudaMemcpyHostToDevice, stream_); e != cudaSuccess) {
        return fail("broadcast_bytes", cudaGetErrorString(e), false);
      }
    }
    RETURN_IF_ERROR(enqueue("broadcast_bytes", static_cast<int64_t>(size), [&] {
      return ncclBroadcast(scratch_, scratch_, size, ncclUint8, root, comm_, stream_);
    }));
    if (cudaError_t e = cudaMemcpyAsync(data, scratch_, size, cudaMemcpyDeviceToHost, stream_); e != cudaSuccess) {
      return fail("broadcast_bytes", cudaGetErrorString(e), false);
    }
    return synchronize();
  }

  NcclOptions options_;
  std::string store_name_;
  std::vector<RankEndpoint> endpoints_;
  LivenessSocket liveness_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool own_stream_ = false;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
  Status broken_;
  // LLMCTL_STEP_TIMING=1: the all-reduces' GPU time, for the tensor-parallel
  // benchmarks' "share of the step in all-reduce" (printed at exit).
  bool timing_ = std::getenv("LLMCTL_STEP_TIMING") != nullptr;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> pending_;
  int64_t reduce_calls_ = 0, reduce_bytes_ = 0;
  double reduce_ms_ = 0;
};

}  // namespace

Result<std::unique_ptr<NcclCommunicator>> connect_nccl(const NcclOptions& options, RendezvousStore& store) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return Status::invalid_argument(
        fmt::format("nccl group \"{}\": rank {} of world size {}", options.group, options.rank, options.world_size));
  }
  if (options.timeout.count() <= 0) {
    return Status::invalid_argument(fmt::format("nccl group \"{}\": timeout must be > 0 ms", options.group));
  }
  auto deadline = Clock::now() + options.timeout;
  std::string host = local_host_name();
  std::string who = fmt::format("{} rank {} on {}", options.group, options.rank, host);
  auto local = choose_local_address(options.interface, options.hostname);
  if (!local.is_ok()) return local.status().with_context(who);
  // NCCL reads its interface from the environment only; the option given
  // here (the node's config) wins over whatever the process inherited.
  if (!options.interface.empty()) ::setenv("NCCL_SOCKET_IFNAME", options.interface.c_str(), 1);
  // Decode graphs capture the collectives, and each rank decides alone when
  // to capture again (its scratch buffers moved), and a rank that could not
  // capture runs its steps eagerly, so one rank's call may be captured while
  // its peer's is not. NCCL forbids
  // mixing buffers registered at capture with unregistered ones across
  // ranks; without registration every call is the same plain collective.
  ::setenv("NCCL_GRAPH_REGISTER", "0", 1);
  auto liveness = LivenessSocket::open(local->address);
  if (!liveness.is_ok()) return liveness.status().with_context(who);
  RankEndpoint self{options.rank, host, local->address, local->interface, static_cast<int>(::getpid()),
                    liveness->port()};
  who = describe_self(options.group, self);

  std::string id_key = options.group + "/nccl/unique_id";
  ncclUniqueId id;
  if (options.rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return Status::unavailable(fmt::format("{}: ncclGetUniqueId: {}", who, ncclGetErrorString(r)));
    }
    RETURN_IF_ERROR(store.set(id_key, std::string(reinterpret_cast<const char*>(&id), sizeof(id))));
  }
  auto endpoints = exchange_endpoints(store, options.group, self, options.world_size, deadline);
  if (!endpoints.is_ok()) {
    if (endpoints.status().code() == StatusCode::kDeadlineExceeded) {
      return Status::deadline_exceeded(fmt::format("{}: rendezvous timed out after {} ms: {}", who,
                                                   options.timeout.count(), endpoints.status().message()));
    }
    return endpoints.status().with_context(who + ": rendezvous");
  }
  if (options.rank != 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto value = store.get(id_key, std::max(left, std::chrono::milliseconds(0)));
    if (!value.is_ok()) return value.status().with_context(who + ": waiting for rank 0's NCCL id");
    if (value->size() != sizeof(id)) {
      return Status::internal(fmt::format("{}: NCCL id of {} bytes in {}", who, value->size(), store.describe()));
    }
    std::memcpy(&id, value->data(), sizeof(id));
  }
  auto group = std::make_unique<NcclGroup>(options, store.describe(), std::move(*endpoints), std::move(*liveness));
  RETURN_IF_ERROR(group->init(id, deadline));
  return std::unique_ptr<NcclCommunicator>(std::move(group));
}

}  // namespace llmctl::dist
