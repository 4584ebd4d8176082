#include "runtime/doctor/peer_checker.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/doctor/doctor_protocol.h"
#include "runtime/doctor/model_manifest.h"
#include "runtime/doctor/node_facts.h"
#include "runtime/doctor/port_prober.h"
#include "runtime/transport/client.h"

namespace llmctl::doctor {

using netcheck::CheckResult;
using netcheck::CheckStatus;
using Json = nlohmann::json;

namespace {

struct NamedPort {
  std::string name;
  int port;
};

std::vector<NamedPort> named_ports(const PortsConfig& p) {
  return {{"head", p.head}, {"dashboard", p.dashboard}, {"client", p.client}, {"api", p.api}};
}

std::vector<int> range_ports(const PortsConfig& p) {
  std::vector<int> out;
  for (int port = p.node_range.first; port <= p.node_range.last; ++port) out.push_back(port);
  return out;
}

struct Peer {
  std::string spec;        // as given
  std::string host;
  int control_port = 0;
  std::unique_ptr<transport::Client> client;
  NodeFacts facts;
  std::string name() const { return facts.hostname.empty() ? spec : facts.hostname; }
};

class Checker {
 public:
  Checker(const netcheck::HostView& host, const PeerCheckOptions& options, const DoctorService* listeners)
      : host_(host), o_(options), listeners_(listeners) {}

  std::vector<CheckResult> run();

 private:
  void add(const std::string& node, std::string id, CheckStatus status, std::string message, std::string fix = "") {
    out_.push_back(CheckResult{node, std::move(id), status, std::move(message), std::move(fix)});
  }
  bool connect(Peer& peer);
  void check_versions_and_clock(Peer& peer, double offset_ms);
  void check_reach(Peer& peer);
  void check_reach_back(Peer& peer);
  void check_remote_local(Peer& peer);
  void check_model(Peer& peer, const Result<ModelManifest>& local_manifest);
  void check_names(std::vector<Peer*>& peers);
  // `ports`: "6379" or "30000-32000".
  static std::string firewall_fix(const std::string& node, const std::string& ports) {
    std::string ufw = ports;
    std::replace(ufw.begin(), ufw.end(), '-', ':');
    return fmt::format("on {}: nft insert rule inet filter input tcp dport {} accept  (or: ufw allow {}/tcp)", node, ports, ufw);
  }

  const netcheck::HostView& host_;
  const PeerCheckOptions& o_;
  const DoctorService* listeners_;
  NodeFacts local_;
  std::vector<CheckResult> out_;
};

std::string outcome_text(const PortProbe& p, int timeout_ms) {
  switch (p.outcome) {
    case ProbeOutcome::kOk: return fmt::format("reachable in {:.1f} ms", p.elapsed_ms);
    case ProbeOutcome::kTimeout: return fmt::format("timeout after {} ms: a firewall drops the packets", timeout_ms);
    case ProbeOutcome::kRefused: return "refused: nothing listens there";
    case ProbeOutcome::kUnreachable: return fmt::format("unreachable ({}): a firewall rejects it or there is no route", p.detail);
    case ProbeOutcome::kReset: return "reset while connecting";
    case ProbeOutcome::kError: return fmt::format("error: {}", p.detail);
  }
  return "?";
}

bool Checker::connect(Peer& peer) {
  auto colon = peer.spec.rfind(':');
  peer.host = peer.spec;
  peer.control_port = o_.local.ports.head;
  if (colon != std::string::npos && peer.spec.find(':') == colon) {
    peer.host = peer.spec.substr(0, colon);
    peer.control_port = std::atoi(peer.spec.c_str() + colon + 1);
  }
  auto client = transport::Client::connect(peer.host, static_cast<std::uint16_t>(peer.control_port), o_.token,
                                           o_.connect_timeout);
  std::string where = fmt::format("{}:{}", peer.host, peer.control_port);
  std::string listen_fix = fmt::format("on {}: llmctl doctor --listen --token <cluster token>", peer.host);
  if (client.is_ok()) {
    peer.client = std::move(client).value();
    return true;
  }
  const Status& s = client.status();
  switch (s.code()) {
    case StatusCode::kPermissionDenied:
      add(peer.spec, "peer.auth", CheckStatus::kFail, fmt::format("{}: {}", where, s.message()),
          "use the same --token (LLMCTL_TOKEN) on every node");
      break;
    case StatusCode::kDeadlineExceeded:
      add(peer.spec, "peer.connect", CheckStatus::kFail,
          fmt::format("{}: no answer within {} ms: a firewall drops it or the host is down", where, o_.connect_timeout.count()),
          firewall_fix(peer.host, std::to_string(peer.control_port)));
      break;
    case StatusCode::kNotFound:
      add(peer.spec, "peer.connect", CheckStatus::kFail, s.message(),
          fmt::format("echo '<address> {}' >> /etc/hosts (or pass its address)", peer.host));
      break;
    default:
      add(peer.spec, "peer.connect", o_.missing_listener_is_skip ? CheckStatus::kSkip : CheckStatus::kFail,
          fmt::format("{}: {} (no doctor listener there?)", where, s.message()), listen_fix);
  }
  return false;
}

void Checker::check_versions_and_clock(Peer& peer, double offset_ms) {
  const std::string node = peer.name();
  struct Field {
    const char* id;
    const char* what;
    std::string mine, theirs;
  };
  const Field fields[] = {{"versions.llmctl", "llmctl", local_.llmctl_version, peer.facts.llmctl_version},
                          {"versions.driver", "NVIDIA driver", local_.driver_version, peer.facts.driver_version},
                          {"versions.cuda", "CUDA (driver API)", local_.cuda_version, peer.facts.cuda_version},
                          {"versions.nccl", "NCCL", local_.nccl_version, peer.facts.nccl_version}};
  for (const auto& f : fields) {
    auto shown = [](const std::string& v) { return v.empty() ? std::string("none") : v; };
    if (f.mine == f.theirs) {
      add(node, f.id, CheckStatus::kOk, fmt::format("{} {} on both {} and {}", f.what, shown(f.mine), node, o_.local.node_name));
    } else if (f.mine.empty() || f.theirs.empty()) {
      // A CPU-only node next to a GPU node: worth knowing, not fatal by itself.
      add(node, f.id, CheckStatus::kWarn,
          fmt::format("{} is {} on {} but {} on {}", f.what, shown(f.theirs), node, shown(f.mine), o_.local.node_name));
    } else {
      add(node, f.id, CheckStatus::kFail,
          fmt::format("{} {} on {} differs from {} on {}", f.what, f.theirs, node, f.mine, o_.local.node_name),
          fmt::format("install the same {} version on every node", f.what));
    }
  }
  if (std::fabs(offset_ms) < o_.max_clock_offset_ms) {
    add(node, "clock.offset", CheckStatus::kOk, fmt::format("clock differs from {} by {:.0f} ms", o_.local.node_name, offset_ms));
  } else {
    add(node, "clock.offset", CheckStatus::kFail,
        fmt::format("clock is {:.1f} s {} {}", std::fabs(offset_ms) / 1000, offset_ms > 0 ? "ahead of" : "behind",
                    o_.local.node_name),
        "apt install chrony on every node (or systemctl enable --now systemd-timesyncd)");
  }
}

void Checker::check_reach(Peer& peer) {
  const std::string node = peer.name();
  std::string address = peer.facts.address.empty() ? peer.host : peer.facts.address;
  int timeout_ms = static_cast<int>(o_.port_timeout.count());
  PortProberOptions po;
  po.timeout = o_.port_timeout;
  std::vector<int> singles;
  for (const auto& np : named_ports(o_.local.ports)) singles.push_back(np.port);
  auto probes = probe_ports(address, singles, po);
  auto names = named_ports(o_.local.ports);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& p = probes[i];
    std::string what = fmt::format("{} port {}:{} from {}: {}", names[i].name, address, p.port, o_.local.node_name,
                                   outcome_text(p, timeout_ms));
    add(node, "reach." + names[i].name, p.outcome == ProbeOutcome::kOk ? CheckStatus::kOk : CheckStatus::kFail, what,
        p.outcome == ProbeOutcome::kRefused ? fmt::format("start `llmctl doctor --listen` on {} (or free the port there)", node)
                                            : firewall_fix(node, std::to_string(p.port)));
  }
  auto range = range_ports(o_.local.ports);
  auto range_probes = probe_ports(address, range, po);
  int ok = static_cast<int>(std::count_if(range_probes.begin(), range_probes.end(),
                                          [](const PortProbe& p) { return p.outcome == ProbeOutcome::kOk; }));
  std::string span = fmt::format("{}-{}", o_.local.ports.node_range.first, o_.local.ports.node_range.last);
  std::string summary = fmt::format("node range {} on {} from {}: {}", span, address, o_.local.node_name, summarize_probes(range_probes));
  add(node, "reach.node_range", ok == static_cast<int>(range.size()) ? CheckStatus::kOk : CheckStatus::kFail,
      ok == static_cast<int>(range.size()) ? summary
                                           : summary + " (without the range a worker joins, then drops off)",
      firewall_fix(node, span));
}

void Checker::check_reach_back(Peer& peer) {
  const std::string node = peer.name();
  if (listeners_ == nullptr || local_.address.empty()) {
    add(node, "reach_back.node_range", CheckStatus::kSkip, "this node has no listeners, so the peer cannot connect back");
    return;
  }
  const ListenSummary& mine = listeners_->summary();
  std::vector<int> ports;
  for (int port : mine.bound_ports) ports.push_back(port);
  Json request = {{"address", local_.address}, {"ports", ports}, {"timeout_ms", o_.port_timeout.count()}};
  auto reply = peer.client->call(kConnectBackRequest, request, o_.call_timeout);
  if (!reply.is_ok()) {
    add(node, "reach_back.node_range", CheckStatus::kFail, fmt::format("connect-back failed: {}", reply.status().message()));
    return;
  }
  std::map<int, PortProbe> by_port;
  for (const auto& p : reply->value("probes", Json::array())) {
    PortProbe probe;
    probe.port = p.value("port", 0);
    probe.outcome = parse_probe_outcome(p.value("outcome", ""));
    probe.elapsed_ms = p.value("elapsed_ms", 0.0);
    probe.detail = p.value("detail", "");
    by_port[probe.port] = probe;
  }
  int timeout_ms = static_cast<int>(o_.port_timeout.count());
  for (const auto& np : named_ports(o_.local.ports)) {
    auto it = by_port.find(np.port);
    if (it == by_port.end()) {
      add(node, "reach_back." + np.name, CheckStatus::kSkip,
          fmt::format("{} port {} is taken on {}, so it cannot be tested from {}", np.name, np.port, o_.local.node_name, node));
      continue;
    }
    const auto& p = it->second;
    add(node, "reach_back." + np.name, p.outcome == ProbeOutcome::kOk ? CheckStatus::kOk : CheckStatus::kFail,
        fmt::format("{} port {}:{} from {}: {}", np.name, local_.address, np.port, node, outcome_text(p, timeout_ms)),
        firewall_fix(o_.local.node_name, std::to_string(np.port)));
  }
  std::vector<PortProbe> range;
  for (const auto& [port, probe] : by_port) {
    if (o_.local.ports.node_range.contains(port)) range.push_back(probe);
  }
  std::string span = fmt::format("{}-{}", o_.local.ports.node_range.first, o_.local.ports.node_range.last);
  bool all_ok = std::all_of(range.begin(), range.end(), [](const PortProbe& p) { return p.outcome == ProbeOutcome::kOk; });
  std::string untested = mine.range_bound < mine.range_total
                             ? fmt::format(" ({} ports taken here were not tested)", mine.range_total - mine.range_bound)
                             : "";
  add(node, "reach_back.node_range", all_ok ? CheckStatus::kOk : CheckStatus::kFail,
      fmt::format("node range {} on {} from {}: {}{}", span, local_.address, node, summarize_probes(range), untested),
      firewall_fix(o_.local.node_name, span));
}

void Checker::check_remote_local(Peer& peer) {
  Json request = {{"peers", Json::array({local_.address.empty() ? o_.local.node_name : local_.address})}};
  auto reply = peer.client->call(kChecksRequest, request, o_.call_timeout);
  if (!reply.is_ok()) return;  // an older peer may not answer it; the cluster checks stand alone
  for (const auto& c : reply->value("checks", Json::array())) {
    std::string status = c.value("status", "skip");
    CheckStatus st = status == "ok" ? CheckStatus::kOk : status == "warn" ? CheckStatus::kWarn
                     : status == "fail" ? CheckStatus::kFail : CheckStatus::kSkip;
    add(peer.name(), c.value("id", "?"), st, c.value("message", ""), c.value("fix", ""));
  }
}

void Checker::check_model(Peer& peer, const Result<ModelManifest>& local_manifest) {
  const std::string node = peer.name();
  auto reply = peer.client->call(kModelRequest, Json{{"path", o_.model_path}, {"deep", o_.deep}}, o_.call_timeout);
  if (!reply.is_ok()) {
    add(node, "model.files", CheckStatus::kFail, fmt::format("model {} on {}: {}", o_.model_path, node, reply.status().message()),
        fmt::format("rsync -a {}/ {}:{}/", o_.model_path, node, o_.model_path));
    return;
  }
  if (!local_manifest.is_ok()) {
    add(node, "model.files", CheckStatus::kSkip, "the model is missing here, so there is nothing to compare with");
    return;
  }
  auto theirs = ModelManifest::from_json(*reply);
  auto diffs = diff_manifests(*local_manifest, theirs);
  if (diffs.empty()) {
    add(node, "model.files", CheckStatus::kOk,
        fmt::format("{}: same {} files{} as {}", o_.model_path, theirs.files.size(), o_.deep ? " and checksums" : " and sizes",
                    o_.local.node_name));
  } else {
    std::vector<std::string> shown(diffs.begin(), diffs.begin() + std::min<std::size_t>(diffs.size(), 5));
    add(node, "model.files", CheckStatus::kFail,
        fmt::format("{} differs from {}: {}{}", o_.model_path, o_.local.node_name, fmt::join(shown, "; "),
                    diffs.size() > 5 ? fmt::format(" (+{} more)", diffs.size() - 5) : ""),
        fmt::format("rsync -a --delete {}/ {}:{}/", o_.model_path, node, o_.model_path));
  }
}

void Checker::check_names(std::vector<Peer*>& peers) {
  // Every node (us included) must resolve every other node's name to the address it reports.
  struct Node {
    std::string name, address;
  };
  std::vector<Node> nodes = {{local_.hostname, local_.address}};
  for (auto* p : peers) nodes.push_back({p->facts.hostname, p->facts.address});

  auto judge = [&](const std::string& resolver_node, const std::map<std::string, Result<std::vector<std::string>>>& found,
                   const std::string& self_name) {
    std::vector<std::string> problems, fixes, good;
    for (const auto& n : nodes) {
      if (n.name == self_name || n.name.empty()) continue;
      auto it = found.find(n.name);
      if (it == found.end() || !it->second.is_ok() || it->second->empty()) {
        problems.push_back(fmt::format("{} does not resolve", n.name));
        fixes.push_back(fmt::format("echo '{} {}' >> /etc/hosts", n.address, n.name));
        continue;
      }
      const auto& addrs = *it->second;
      if (std::find(addrs.begin(), addrs.end(), n.address) == addrs.end() || netcheck::is_loopback_address(addrs.front())) {
        problems.push_back(fmt::format("{} resolves to {} but {} reports {}", n.name, fmt::join(addrs, ","), n.name, n.address));
        fixes.push_back(fmt::format("map {} to {} in /etc/hosts", n.name, n.address));
      } else {
        good.push_back(fmt::format("{}={}", n.name, n.address));
      }
    }
    if (problems.empty()) {
      add(resolver_node, "names.resolve", CheckStatus::kOk, fmt::format("resolves {}", fmt::join(good, ", ")));
    } else {
      add(resolver_node, "names.resolve", CheckStatus::kFail,
          fmt::format("on {}: {}", resolver_node, fmt::join(problems, "; ")),
          fmt::format("on {}: {}", resolver_node, fmt::join(fixes, " && ")));
    }
  };

  std::map<std::string, Result<std::vector<std::string>>> local_found;
  for (const auto& n : nodes) {
    if (!n.name.empty() && n.name != local_.hostname) local_found.emplace(n.name, host_.resolve(n.name));
  }
  judge(o_.local.node_name, local_found, local_.hostname);
  if (o_.outbound_only) return;

  for (auto* p : peers) {
    Json names = Json::array();
    for (const auto& n : nodes) {
      if (n.name != p->facts.hostname && !n.name.empty()) names.push_back(n.name);
    }
    auto reply = p->client->call(kResolveRequest, Json{{"names", names}}, o_.call_timeout);
    if (!reply.is_ok()) {
      add(p->name(), "names.resolve", CheckStatus::kFail, fmt::format("asking {} to resolve names: {}", p->name(), reply.status().message()));
      continue;
    }
    std::map<std::string, Result<std::vector<std::string>>> found;
    const Json results = reply->value("results", Json::object());
    for (const auto& n : names) {
      std::string name = n.get<std::string>();
      auto r = results.find(name);
      if (r != results.end() && r->contains("addresses")) {
        found.emplace(name, (*r)["addresses"].get<std::vector<std::string>>());
      } else {
        found.emplace(name, Status::not_found(name));
      }
    }
    judge(p->name(), found, p->facts.hostname);
  }
}

std::vector<CheckResult> Checker::run() {
  local_ = collect_node_facts(host_, o_.local.node_ip, "");
  Result<ModelManifest> local_manifest = Status::not_found("no model");
  if (!o_.model_path.empty()) {
    local_manifest = build_model_manifest(o_.model_path, o_.deep);
    if (!local_manifest.is_ok()) {
      add(o_.local.node_name, "model.files", CheckStatus::kFail, local_manifest.status().message(),
          fmt::format("copy the model to {} on {}", o_.model_path, o_.local.node_name));
    } else {
      add(o_.local.node_name, "model.files", CheckStatus::kOk,
          fmt::format("{}: {} files", o_.model_path, local_manifest->files.size()));
    }
  }
  std::vector<std::unique_ptr<Peer>> peers;
  std::vector<Peer*> connected;
  for (const auto& spec : o_.peers) {
    auto peer = std::make_unique<Peer>();
    peer->spec = spec;
    if (!connect(*peer)) continue;
    auto before = unix_time_ms();
    auto info = peer->client->call(kInfoRequest, Json::object(), o_.call_timeout);
    auto after = unix_time_ms();
    if (!info.is_ok()) {
      add(spec, "peer.connect", CheckStatus::kFail, info.status().message());
      continue;
    }
    peer->facts = NodeFacts::from_json(*info);
    double offset_ms = static_cast<double>(peer->facts.time_unix_ms) - static_cast<double>(before + after) / 2.0;
    add(peer->name(), "peer.connect", CheckStatus::kOk,
        fmt::format("doctor listener at {} ({}) answered in {} ms, token accepted", peer->client->remote_address(),
                    peer->facts.address, after - before));
    check_versions_and_clock(*peer, offset_ms);
    check_reach(*peer);
    if (!o_.outbound_only) {
      check_reach_back(*peer);
      check_remote_local(*peer);
    }
    if (!o_.model_path.empty()) check_model(*peer, local_manifest);
    connected.push_back(peer.get());
    peers.push_back(std::move(peer));
  }
  if (!connected.empty()) check_names(connected);
  return out_;
}

}  // namespace

std::vector<CheckResult> check_peers(const netcheck::HostView& host, const PeerCheckOptions& options,
                                     const DoctorService* listeners) {
  return Checker(host, options, listeners).run();
}

}  // namespace llmctl::doctor
