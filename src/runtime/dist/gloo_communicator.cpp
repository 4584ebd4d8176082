// Gloo sits behind gloo_shim.h (its own shared library, see there); its
// failures come back as messages, and are turned here into a Status that
// names this rank and, after probing every peer's LivenessSocket, the peer
// that is gone or silent.
#include "runtime/dist/gloo_communicator.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <regex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/dist/gloo_shim.h"
#include "runtime/dist/group_failure.h"
#include "runtime/dist/liveness_socket.h"
#include "runtime/dist/rank_endpoint.h"

namespace llmctl::dist {
namespace {

// The store as gloo_shim.h's callbacks; the first failure is kept here.
struct StoreCallbacks {
  RendezvousStore* store;
  Status status;

  static int set(void* ctx, const char* key, const char* data, size_t size) {
    auto* self = static_cast<StoreCallbacks*>(ctx);
    self->status = self->store->set(key, std::string(data, size));
    return self->status.is_ok() ? 0 : 1;
  }
  static int get(void* ctx, const char* key, long long timeout_ms, void (*sink)(void*, const char*, size_t),
                 void* sink_ctx) {
    auto* self = static_cast<StoreCallbacks*>(ctx);
    auto value = self->store->get(key, std::chrono::milliseconds(timeout_ms));
    if (!value.is_ok()) {
      self->status = value.status();
      return 1;
    }
    sink(sink_ctx, value->data(), value->size());
    return 0;
  }
};

constexpr std::size_t kErrorSize = 1024;

// A dead peer's socket makes Gloo's writev raise SIGPIPE, which would kill
// the survivors instead of letting them report; nobody here wants it.
void ignore_sigpipe() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

bool mentions_timeout(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("timed out") != std::string::npos || lower.find("timeout") != std::string::npos;
}

// Gloo's messages carry "[file:line] " prefixes; the reader wants the rest.
std::string strip_gloo_location(const std::string& text) {
  static const std::regex kLocation(R"(\[[^\]\s]*\.(cc|h):\d+\] )");
  return std::regex_replace(text, kLocation, "");
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(GlooOptions options, std::string store_name, std::vector<RankEndpoint> endpoints,
                   LivenessSocket liveness, LlmctlGlooGroup* group)
      : options_(std::move(options)),
        store_name_(std::move(store_name)),
        endpoints_(std::move(endpoints)),
        liveness_(std::move(liveness)),
        group_(group) {}

  ~GlooCommunicator() override { llmctl_gloo_close(group_); }

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }

  Status all_reduce_sum(float* data, int64_t count) override {
    RETURN_IF_ERROR(check_count("all_reduce_sum", count, 1));
    if (count == 0 || group_ == nullptr) return broken_;
    return run(fmt::format("all_reduce_sum of {} floats", count), [&](char* err) {
      return llmctl_gloo_all_reduce_sum_f32(group_, data, static_cast<int>(count), err, kErrorSize);
    });
  }

  Status all_gather(const float* in, float* out, int64_t count) override {
    RETURN_IF_ERROR(check_count("all_gather", count, options_.world_size));
    if (count == 0) return broken_;
    if (group_ == nullptr) {
      if (!broken_.is_ok()) return broken_;
      std::copy(in, in + count, out);
      return Status::ok();
    }
    return run(fmt::format("all_gather of {} floats", count), [&](char* err) {
      return llmctl_gloo_all_gather_f32(group_, in, out, static_cast<int>(count), err, kErrorSize);
    });
  }

  Status broadcast_bytes(std::string& bytes, int root) override {
    if (root < 0 || root >= options_.world_size) {
      return Status::invalid_argument(
          fmt::format("{}: broadcast_bytes: root {} outside 0..{}", self(), root, options_.world_size - 1));
    }
    if (group_ == nullptr) return broken_;
    std::int64_t size = static_cast<std::int64_t>(bytes.size());
    RETURN_IF_ERROR(run("broadcast_bytes (size)", [&](char* err) {
      return llmctl_gloo_broadcast(group_, &size, sizeof(size), root, err, kErrorSize);
    }));
    if (size < 0) return Status::internal(fmt::format("{}: broadcast_bytes: root sent size {}", self(), size));
    if (options_.rank != root) bytes.resize(static_cast<std::size_t>(size));
    if (size == 0) return Status::ok();
    return run(fmt::format("broadcast_bytes of {} bytes from rank {}", size, root), [&](char* err) {
      return llmctl_gloo_broadcast(group_, bytes.data(), bytes.size(), root, err, kErrorSize);
    });
  }

  Status barrier() override {
    if (group_ == nullptr) return broken_;
    return run("barrier", [&](char* err) { return llmctl_gloo_barrier(group_, err, kErrorSize); });
  }

  // Gloo's algorithms count in int.
  Status check_count(const char* op, int64_t count, int64_t multiple) const {
    if (count < 0 || count * multiple > std::numeric_limits<int>::max()) {
      return Status::invalid_argument(fmt::format("{}: {}: count {} outside 0..{}", self(), op, count,
                                                  std::numeric_limits<int>::max() / multiple));
    }
    return Status::ok();
  }

  std::string self() const { return describe_self(options_.group, endpoints_[static_cast<std::size_t>(options_.rank)]); }

  // The first failure, with the peers named; every later call returns it,
  // since a Gloo context that threw is out of step with its peers.
  Status fail(const std::string& op, const std::string& what) {
    std::string detail = strip_gloo_location(what);
    GroupFailure failure{self(), options_.rank, &endpoints_, options_.timeout, options_.group, store_name_, "gloo"};
    Status s = describe_group_failure(failure, op, detail, mentions_timeout(detail), peer_named_in(detail));
    broken_ = s;
    // Closing our sockets now tells peers still blocked on us at once,
    // instead of after their own time-out.
    llmctl_gloo_close(group_);
    group_ = nullptr;
    return s;
  }

 private:
  template <typename F>
  Status run(const std::string& op, F&& call) {
    if (!broken_.is_ok()) return broken_;
    char err[kErrorSize] = {};
    if (call(err) == kLlmctlGlooOk) return Status::ok();
    return fail(op, err);
  }

  // Gloo names a peer as "[ip]:port"; the endpoint at that address when it
  // is the only one there (one rank per node), else "".
  std::string peer_named_in(const std::string& detail) const {
    static const std::regex kPeer(R"(\[([0-9a-fA-F:.]+)\]:\d+)");
    std::smatch m;
    if (!std::regex_search(detail, m, kPeer)) return "";
    const RankEndpoint* found = nullptr;
    for (const RankEndpoint& peer : endpoints_) {
      if (peer.rank == options_.rank || peer.address != m[1].str()) continue;
      if (found != nullptr) return "";
      found = &peer;
    }
    return found ? found->describe() : "";
  }

  GlooOptions options_;
  std::string store_name_;
  std::vector<RankEndpoint> endpoints_;
  LivenessSocket liveness_;
  LlmctlGlooGroup* group_;  // null: a group of one, or closed after a failure
  Status broken_;
};

}  // namespace

Result<std::unique_ptr<Communicator>> connect_gloo(const GlooOptions& options, RendezvousStore& store) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return Status::invalid_argument(
        fmt::format("gloo group \"{}\": rank {} of world size {}", options.group, options.rank, options.world_size));
  }
  if (options.timeout.count() <= 0) {
    return Status::invalid_argument(fmt::format("gloo group \"{}\": timeout must be > 0 ms", options.group));
  }
  auto started = std::chrono::steady_clock::now();
  auto deadline = started + options.timeout;
  std::string host = local_host_name();
  auto who = [&](const std::string& where) {
    return fmt::format("{} rank {} on {}{}", options.group, options.rank, host, where);
  };
  auto local = choose_local_address(options.interface, options.hostname);
  if (!local.is_ok()) return local.status().with_context(who(""));
  std::string where = local->interface.empty() ? local->address : local->address + ", " + local->interface;
  auto liveness = LivenessSocket::open(local->address);
  if (!liveness.is_ok()) return liveness.status().with_context(who(fmt::format(" ({})", where)));

  RankEndpoint self{options.rank, host, local->address, local->interface, static_cast<int>(::getpid()),
                    liveness->port()};
  auto endpoints = exchange_endpoints(store, options.group, self, options.world_size, deadline);
  if (!endpoints.is_ok()) {
    const Status& s = endpoints.status();
    if (s.code() == StatusCode::kDeadlineExceeded) {
      return Status::deadline_exceeded(fmt::format("{}: rendezvous timed out after {} ms: {}", who(fmt::format(" ({})", where)),
                                                   options.timeout.count(), s.message()));
    }
    return s.with_context(who(fmt::format(" ({}): rendezvous", where)));
  }
  ignore_sigpipe();
  if (options.world_size == 1) {
    return std::unique_ptr<Communicator>(std::make_unique<GlooCommunicator>(
        options, store.describe(), std::move(*endpoints), std::move(*liveness), nullptr));
  }

  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  StoreCallbacks callbacks{&store, Status::ok()};
  LlmctlGlooStore c_store{&callbacks, &StoreCallbacks::set, &StoreCallbacks::get};
  LlmctlGlooGroup* group = nullptr;
  char err[kErrorSize] = {};
  std::string prefix = options.group + "/gloo/";
  int rc = llmctl_gloo_connect(options.rank, options.world_size, local->address.c_str(), prefix.c_str(),
                               options.timeout.count(), std::max<long long>(left.count(), 1), &c_store, &group, err,
                               kErrorSize);
  if (rc == kLlmctlGlooStoreError) {
    return callbacks.status.with_context(who(fmt::format(" ({}): connecting the group", where)));
  }
  auto comm = std::make_unique<GlooCommunicator>(options, store.describe(), std::move(*endpoints),
                                                 std::move(*liveness), group);
  // Name the peer that is gone, as a failed collective would.
  if (rc != kLlmctlGlooOk) return comm->fail("connecting the group", err);
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace llmctl::dist
