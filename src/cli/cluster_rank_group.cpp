#include "cli/cluster_rank_group.h"

#include <string.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "cli/tensor_parallel_group.h"
#include "runtime/control/control_client.h"
#include "runtime/dist/head_store.h"
#include "runtime/dist/rank_endpoint.h"
#include "runtime/model/model_config.h"
#include "runtime/model/shard_layout.h"

namespace llmctl::cli {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr char kHeadPrefix[] = "head:";
constexpr auto kCallTimeout = 10s;
constexpr auto kPollPeriod = 200ms;
// Workers leave on their own once rank 0's engine says stop; this long, then
// the placement group's removal stops what is left.
constexpr auto kExitGrace = 3s;
// Exported to every rank on every node when set for serve.
constexpr const char* kPassedEnv[] = {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "NCCL_IB_DISABLE"};

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string head_host(const std::string& address) {
  auto hp = control::parse_host_port(address);
  return hp.is_ok() ? hp->first : address;
}

// The address this rank binds: GLOO_SOCKET_IFNAME's, else the one toward the head.
Result<std::string> rank_address_toward(const std::string& head_address) {
  if (!env_or_empty("GLOO_SOCKET_IFNAME").empty()) return std::string();
  auto local = dist::address_toward(head_host(head_address));
  if (!local.is_ok()) return local.status();
  return local->address;
}

bool is_running(const std::string& state) { return state == "starting" || state == "running"; }

// The supervisor reports a signal as 128 + its number.
std::string describe_exit_code(int code) {
  if (code > 128 && code < 128 + 65) return fmt::format("signal {} ({})", code - 128, ::strsignal(code - 128));
  return fmt::format("exit code {}", code);
}

// Rank 0's rendezvous store: waits in slices and, between them, asks
// whether a worker already stopped, so a rank that dies before it joins
// (a missing binary, a bad interface on its node) fails the rendezvous at
// once, naming its node, instead of after the whole time-out.
class WatchedStore final : public dist::RendezvousStore {
 public:
  using Check = std::function<std::optional<std::string>()>;
  WatchedStore(dist::RendezvousStore& inner, Check check) : inner_(inner), check_(std::move(check)) {}

  Status set(const std::string& key, const std::string& value) override { return inner_.set(key, value); }

  Result<std::string> get(const std::string& key, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      auto value = inner_.get(key, std::max(std::chrono::milliseconds(0), std::min(left, kSlice)));
      if (value.is_ok() || value.status().code() != StatusCode::kDeadlineExceeded || left <= kSlice) return value;
      if (auto stopped = check_()) {
        return Status::unavailable(fmt::format("{} before the group met (waiting for \"{}\" in {})", *stopped, key,
                                               describe()));
      }
    }
  }

  std::string describe() const override { return inner_.describe(); }

 private:
  static constexpr std::chrono::milliseconds kSlice{250};
  dist::RendezvousStore& inner_;
  Check check_;
};

// Groups an earlier serve on this host left placed when it was killed
// outright (SIGKILL, a crash): its workers have all ended, since they fail
// without rank 0, but the group still holds their resources. A group of
// this host's whose bundles still run (another serve starting) is left alone.
void remove_stale_groups(control::ControlClient& client, const std::string& host) {
  auto status = client.call("cluster.status", json::object(), kCallTimeout);
  if (!status.is_ok()) return;
  const std::string suffix = fmt::format("(rank 0 on {})", host);
  for (const auto& g : (*status)["groups"]) {
    std::string name = g.value("name", "");
    if (g.value("state", "") != "placed" || name.rfind("serve ", 0) != 0 || name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    bool running = false;
    for (const auto& b : g["bundles"]) running = running || is_running(b.value("state", ""));
    if (running) continue;
    std::string id = g.value("group_id", "");
    auto r = client.call("placement.remove", {{"group_id", id}}, kCallTimeout);
    logger("serve")->info("removed placement group {} ({}) left by a serve that is gone: {}", id, name,
                          r.is_ok() ? "ok" : r.status().message());
  }
}

}  // namespace

Result<RankStore> open_rank_store(const std::string& rendezvous, const std::string& state_dir) {
  if (rendezvous.rfind(kHeadPrefix, 0) != 0) {
    ASSIGN_OR_RETURN(auto store, dist::open_file_store(rendezvous));
    return RankStore{std::move(store), "127.0.0.1"};
  }
  std::string rest = rendezvous.substr(sizeof(kHeadPrefix) - 1);
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size()) {
    return Status::invalid_argument(
        fmt::format("--rendezvous \"{}\": want head:HOST:PORT/ENGINE or a directory", rendezvous));
  }
  std::string address = rest.substr(0, slash), engine = rest.substr(slash + 1);
  control::NodePaths paths(state_dir);
  auto access = control::resolve_cluster_access(address, env_or_empty("LLMCTL_TOKEN"), paths);
  if (!access.is_ok()) return access.status().with_context("the cluster token for the rendezvous at head " + address);
  dist::HeadStoreOptions ho;
  ho.address = access->address;
  ho.token = access->token;
  ho.tls_ca = access->tls_ca;
  ho.key_prefix = "dist/" + engine + "/";
  ASSIGN_OR_RETURN(auto store, dist::open_head_store(ho));
  ASSIGN_OR_RETURN(std::string local, rank_address_toward(address));
  return RankStore{std::move(store), local};
}

Result<std::unique_ptr<ClusterRankGroup>> ClusterRankGroup::start(const ClusterRankGroupOptions& o) {
  if (o.tp < 2) return Status::invalid_argument("a cluster rank group needs --tp of at least 2");
  // The model must split tp ways; say so before placing anything.
  ASSIGN_OR_RETURN(model::ModelConfig config, model::load_model_config(o.model_dir));
  if (auto layout = model::ShardLayout::make(config, 0, o.tp); !layout.is_ok()) {
    return layout.status().with_context(o.model_dir);
  }
  std::error_code ec;
  std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return Status::io_error(fmt::format("finding this binary (/proc/self/exe): {}", ec.message()));
  std::string model_dir = std::filesystem::absolute(o.model_dir, ec).string();
  if (ec) model_dir = o.model_dir;

  std::unique_ptr<ClusterRankGroup> g(new ClusterRankGroup());
  g->options_ = o;
  g->engine_id_ = fmt::format("engine-{}-{}-{}", dist::local_host_name(), ::getpid(),
                              control::new_cluster_token().substr(0, 8));
  auto client = control::connect_to(o.access, 5000ms);
  if (!client.is_ok()) return client.status().with_context("cannot reach the head at " + o.access.address);
  g->client_ = std::move(client).value();
  remove_stale_groups(*g->client_, dist::local_host_name());

  const bool gpu = o.device == "cuda";
  if (!gpu && o.device != "cpu") {
    return Status::invalid_argument("--device " + o.device + " with --address: use cpu or cuda");
  }
  // NCCL's interface when named (the worker is told it on its argv, the same
  // for every node as the group's env is), else Gloo's as a worker would.
  const std::string interface = env_or_empty(gpu && !env_or_empty("NCCL_SOCKET_IFNAME").empty() ? "NCCL_SOCKET_IFNAME"
                                                                                                 : "GLOO_SOCKET_IFNAME");
  g->rank_offset_ = gpu ? 0 : 1;
  json bundles = json::array();
  if (gpu) {
    // Rank 0's GPU: held on this node so nothing else is given it; nothing launched.
    bundles.push_back({{"resources", {{"GPU", 1}}}, {"pinned_node", o.rank0_node}});
  }
  for (int rank = 1; rank < o.tp; ++rank) {
    json resources = gpu ? json{{"GPU", 1}} : json{{"CPU", 1}};
    std::vector<std::string> command = {exe,
                                        "--log-level",
                                        o.log_level,
                                        "worker",
                                        "--model",
                                        model_dir,
                                        "--rank",
                                        std::to_string(rank),
                                        "--tp",
                                        std::to_string(o.tp),
                                        "--rendezvous",
                                        fmt::format("{}{}/{}", kHeadPrefix, o.access.address, g->engine_id_),
                                        "--device",
                                        o.device,
                                        "--threads",
                                        std::to_string(o.threads_per_rank),
                                        "--load-format",
                                        o.load_format};
    if (gpu && !env_or_empty("NCCL_SOCKET_IFNAME").empty()) command.insert(command.end(), {"--interface", interface});
    bundles.push_back({{"resources", resources}, {"command", command}});
  }
  json env = json::object();
  for (const char* name : kPassedEnv) {
    if (std::string v = env_or_empty(name); !v.empty()) env[name] = v;
  }
  json request = {{"name", o.name}, {"strategy", o.strategy}, {"bundles", bundles},
                  {"restart", "never"}, {"env", env}};
  auto placed = g->client_->call("placement.submit", request, kCallTimeout);
  if (!placed.is_ok()) return placed.status().with_context("asking the cluster for the tensor-parallel ranks");
  g->group_id_ = placed->value("group_id", "");
  g->reported_.assign(bundles.size(), false);
  if (placed->value("state", "") != "placed") {
    if (gpu) {
      return Status::unavailable(fmt::format(
          "the cluster cannot place {} rank(s) of one GPU, rank 0's on this node ({}) (strategy {}): {}", o.tp,
          o.rank0_node, o.strategy, placed->value("reason", "no reason given")));
    }
    return Status::unavailable(fmt::format("the cluster cannot place {} rank(s) of {} (strategy {}): {}", o.tp - 1,
                                           "one CPU", o.strategy, placed->value("reason", "no reason given")));
  }
  if (gpu) {
    const json indices = (*placed)["bundles"][0].value("gpu_indices", json::array());
    if (indices.size() != 1 || !indices[0].is_number_integer()) {
      return Status::internal(fmt::format("the head gave rank 0's bundle GPU indices {}, not one", indices.dump()));
    }
    g->device_ = fmt::format("cuda:{}", indices[0].get<int>());
    logger("serve")->info("placement group {} ({}): rank 0 on GPU {} of this node, ranks 1..{} placed", g->group_id_,
                          o.name, indices[0].get<int>(), o.tp - 1);
  } else {
    logger("serve")->info("placement group {} ({}): ranks 1..{} placed", g->group_id_, o.name, o.tp - 1);
  }

  dist::HeadStoreOptions ho;
  ho.address = o.access.address;
  ho.token = o.access.token;
  ho.tls_ca = o.access.tls_ca;
  ho.key_prefix = "dist/" + g->engine_id_ + "/";
  ASSIGN_OR_RETURN(g->store_, dist::open_head_store(ho));
  TensorParallelJoin join;
  join.rank = 0;
  join.tp = o.tp;
  join.device = g->device_;
  join.interface = interface;
  if (interface.empty()) {
    auto local = dist::address_toward(head_host(o.access.address));
    if (!local.is_ok()) return local.status().with_context("tensor-parallel rank 0");
    join.hostname = local->address;
  }
  join.timeout = o.timeout;
  WatchedStore watched(*g->store_, [&g] { return g->poll_exited(); });
  auto comm = join_tensor_parallel_group(join, watched);
  if (!comm.is_ok()) {
    return comm.status().with_context("joining the tensor-parallel group").with_context(g->describe_ranks());
  }
  g->comm_ = std::move(comm).value();
  return g;
}

std::string ClusterRankGroup::describe_ranks() {
  auto status = client_->call("cluster.status", json::object(), kCallTimeout);
  if (!status.is_ok()) return "the head did not say where the ranks are: " + status.status().message();
  std::map<std::string, json> nodes;
  for (const auto& n : (*status)["nodes"]) nodes[n.value("node_id", "")] = n;
  for (const auto& grp : (*status)["groups"]) {
    if (grp.value("group_id", "") != group_id_) continue;
    std::string out;
    int i = 0;
    for (const auto& b : grp["bundles"]) {
      const json& n = nodes[b.value("node_id", "")];
      if (!out.empty()) out += "; ";
      out += fmt::format("rank {} on node {} ({}) {}", i + rank_offset_, n.value("name", b.value("node_id", "?")),
                         n.value("address", "?"), b.value("state", "?"));
      if (b.value("state", "") == "reserved") {
        out += fmt::format(" (this serve, GPU {})", b.value("gpu_indices", json::array()).dump());
      } else {
        if (!is_running(b.value("state", ""))) out += " with " + describe_exit_code(b.value("exit_code", 0));
        out += fmt::format(" (its log: the node's <state dir>/agent/bundles/{}-{}.err)", group_id_, i);
      }
      ++i;
    }
    return out;
  }
  return fmt::format("placement group {} is gone", group_id_);
}

std::optional<std::string> ClusterRankGroup::poll_exited() {
  if (removed_ || std::chrono::steady_clock::now() < next_poll_) return std::nullopt;
  next_poll_ = std::chrono::steady_clock::now() + kPollPeriod;
  auto status = client_->call("cluster.status", json::object(), kCallTimeout);
  if (!status.is_ok()) {
    logger("serve")->warn("asking the head how the ranks are: {}", status.status().message());
    return std::nullopt;
  }
  std::map<std::string, json> nodes;
  for (const auto& n : (*status)["nodes"]) nodes[n.value("node_id", "")] = n;
  for (const auto& grp : (*status)["groups"]) {
    if (grp.value("group_id", "") != group_id_) continue;
    std::size_t i = 0;
    for (const auto& b : grp["bundles"]) {
      if (i >= reported_.size() || reported_[i]) {
        ++i;
        continue;
      }
      const json& n = nodes[b.value("node_id", "")];
      std::string state = b.value("state", "");
      std::string node_state = n.value("state", "");
      // Rank 0's reserved GPU: this process, which is alive as it asks.
      if (state == "reserved" && node_state == "Active") {
        ++i;
        continue;
      }
      if (!is_running(state) || node_state != "Active") {
        reported_[i] = true;
        std::string what = node_state != "Active"
                               ? fmt::format("its node is {} ({})", node_state, n.value("reason", ""))
                               : fmt::format("{} with {}", state, describe_exit_code(b.value("exit_code", 0)));
        return fmt::format("tensor-parallel rank {} on node {} ({}): {}", static_cast<int>(i) + rank_offset_,
                           n.value("name", b.value("node_id", "?")), n.value("address", "?"), what);
      }
      ++i;
    }
    return std::nullopt;
  }
  return fmt::format("placement group {} of the tensor-parallel ranks is gone from the cluster", group_id_);
}

void ClusterRankGroup::kill_all() {
  if (removed_ || group_id_.empty()) return;
  auto r = client_->call("placement.remove", {{"group_id", group_id_}}, kCallTimeout);
  if (!r.is_ok()) {
    logger("serve")->error("removing placement group {}: {}", group_id_, r.status().message());
    return;
  }
  removed_ = true;
}

ClusterRankGroup::~ClusterRankGroup() {
  comm_.reset();
  store_.reset();
  if (!client_) return;
  if (!group_id_.empty() && !removed_) {
    // Rank 0's engine has told the workers to stop; let them leave on their own.
    const auto deadline = std::chrono::steady_clock::now() + kExitGrace;
    while (std::chrono::steady_clock::now() < deadline) {
      auto status = client_->call("cluster.status", json::object(), kCallTimeout);
      if (!status.is_ok()) break;
      bool running = false;
      for (const auto& grp : (*status)["groups"]) {
        if (grp.value("group_id", "") != group_id_) continue;
        for (const auto& b : grp["bundles"]) running = running || is_running(b.value("state", ""));
      }
      if (!running) break;
      std::this_thread::sleep_for(50ms);
    }
    kill_all();
  }
  auto r = client_->call("kv.delete", {{"prefix", "dist/" + engine_id_ + "/"}}, kCallTimeout);
  if (!r.is_ok()) logger("serve")->warn("deleting the rendezvous keys of {}: {}", engine_id_, r.status().message());
}

}  // namespace llmctl::cli
