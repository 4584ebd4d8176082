#include "runtime/remote/cluster_doctor.h"

#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "runtime/remote/bundle.h"
#include "runtime/remote/host_probe.h"
#include "runtime/remote/remote_llmctl.h"
#include "runtime/remote/ssh_session.h"

namespace llmctl::remote {
namespace {

using netcheck::CheckResult;
using netcheck::CheckStatus;

std::string doctor_dir(const NodeConfig& n) { return remote_path(n.state_dir) + "/doctor"; }
std::string doctor_command(const NodeConfig& n) { return llmctl_command(n) + " doctor " + doctor_dir(n) + "/cluster.toml"; }

struct DoctorHost {
  const NodeConfig* node = nullptr;
  std::string address;      // node_ip, else what host resolves to here (else host)
  std::unique_ptr<SshSession> session;
  HostFacts facts;
  bool ready = false;       // the bundle and the file are in place
  bool listening = false;
  std::vector<CheckResult> own;       // ssh.*, doctor.*, its local checks
  std::vector<CheckResult> outbound;  // what it found about the others

  void add(std::string id, CheckStatus status, std::string message, std::string fix = "") {
    own.push_back({node->host, std::move(id), status, std::move(message), std::move(fix)});
  }
  std::string dir() const { return doctor_dir(*node); }
  std::string doctor() const { return doctor_command(*node); }
};

std::string random_token() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

CheckStatus parse_status(const std::string& s) {
  return s == "ok" ? CheckStatus::kOk : s == "warn" ? CheckStatus::kWarn : s == "fail" ? CheckStatus::kFail : CheckStatus::kSkip;
}

// A host's `llmctl doctor --json` report; exit 0 or 1 both carry one.
Result<std::vector<CheckResult>> parse_report(const CommandResult& r, const std::string& target) {
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  if ((r.exit_code != 0 && r.exit_code != 1) || j.is_discarded() || !j.is_object() || !j.contains("checks"))
    return Status::internal(fmt::format("{}: llmctl doctor printed no report ({})", target, command_failure(r)));
  std::vector<CheckResult> out;
  for (const auto& c : j["checks"]) {
    if (!c.is_object()) continue;
    out.push_back({c.value("node", ""), c.value("id", "?"), parse_status(c.value("status", "skip")),
                   c.value("message", ""), c.value("fix", "")});
  }
  return out;
}

// Stops the listener whose pid <dir>/listen.pid holds (SIGTERM, then SIGKILL after 5 s).
std::string stop_listener_command(const std::string& dir) {
  return fmt::format(
      "d={0}; if p=$(cat \"$d/listen.pid\" 2>/dev/null); then kill \"$p\" 2>/dev/null; i=0; "
      "while kill -0 \"$p\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
      "kill -9 \"$p\" 2>/dev/null; rm -f \"$d/listen.pid\"; fi; true",
      dir);
}

// A listener outlives a doctor run that is interrupted (Ctrl-C on the
// launching machine) and would hold the head port against `up`; so it lives
// at most this long, and the next run stops a leftover one before anything
// else (its local checks would find the ports taken).
constexpr int kListenerLifetimeS = 900;

// Connects, probes, uploads what differs and copies the file; false: the host
// cannot be checked further (the reason is in host.own).
bool prepare(DoctorHost& h, const ClusterDoctorOptions& o, const Bundle& bundle) {
  const NodeConfig& n = *h.node;
  auto session = SshSession::connect(ssh_options_for(n, o.known_hosts_file, o.accept_new_host_keys, o.connect_timeout_s));
  if (!session.is_ok()) {
    h.add("ssh.connect", CheckStatus::kFail, session.status().message(),
          fmt::format("check that `ssh -p {} {}@{}` works with the key in the file", n.ssh.port, n.ssh.user, n.host));
    return false;
  }
  h.session = std::move(session).value();
  auto probe = h.session->run_plain(probe_command(n.install_dir, n.state_dir), 30);
  Result<HostFacts> facts = probe.is_ok() ? parse_probe_output(probe->stdout_text) : Result<HostFacts>(probe.status());
  if (!facts.is_ok()) {
    h.add("ssh.connect", CheckStatus::kFail, fmt::format("{}: probing the host: {}", h.session->target(), facts.status().message()));
    return false;
  }
  h.facts = std::move(facts).value();
  if (auto r = h.session->run_plain(stop_listener_command(h.dir()), 30); !r.is_ok()) {
    h.add("doctor.listen", CheckStatus::kFail,
          fmt::format("{}: stopping a leftover doctor listener: {}", h.session->target(), r.status().message()));
    return false;
  }
  if (h.facts.os_arch != local_os_arch()) {
    h.add("ssh.bundle", CheckStatus::kFail,
          fmt::format("{}: the host is {}, this llmctl is built for {}; its checks cannot run there", h.session->target(),
                      h.facts.os_arch, local_os_arch()),
          "run llmctl from a machine of the hosts' architecture");
    return false;
  }
  auto files = files_to_upload(h.facts, bundle);
  if (Status s = upload_bundle(*h.session, n, files, o.print ? o.print : PrintLine([](const std::string&) {})); !s.is_ok()) {
    h.add("ssh.bundle", CheckStatus::kFail, s.message(), fmt::format("free disk space in {} on {}", n.install_dir, n.host));
    return false;
  }
  h.add("ssh.connect", CheckStatus::kOk,
        fmt::format("{}: {}, llmctl {}", h.session->target(), h.facts.os_arch,
                    files.empty() ? "up to date" : fmt::format("uploaded ({} file(s))", files.size())));
  return true;
}

void run_local(DoctorHost& h, const std::string& config_text) {
  auto report = run_local_doctor(*h.session, *h.node, config_text);
  if (!report.is_ok()) {
    h.add("doctor.local", CheckStatus::kFail, report.status().message());
    return;
  }
  h.own.insert(h.own.end(), report->begin(), report->end());
}

void start_listener(DoctorHost& h, const std::string& token) {
  // setsid: the listener outlives this channel; its output goes to a file so
  // the channel closes once it says it listens. timeout passes SIGTERM on.
  std::string command = fmt::format(
      "read -r LLMCTL_TOKEN && export LLMCTL_TOKEN && d={0} && rm -f \"$d/listen.out\" && "
      "(setsid timeout {2} {1} --listen </dev/null >\"$d/listen.out\" 2>&1 & echo $! >\"$d/listen.pid\") && i=0 && "
      "while [ $i -lt 200 ]; do grep -q 'listening on' \"$d/listen.out\" && exit 0; "
      "kill -0 \"$(cat \"$d/listen.pid\")\" 2>/dev/null || break; sleep 0.1; i=$((i+1)); done; "
      "cat \"$d/listen.out\" >&2; exit 1",
      h.dir(), h.doctor(), kListenerLifetimeS);
  auto r = h.session->run_with_input(command, token + "\n", 60);
  if (r.is_ok() && r->exit_code == 0) {
    h.listening = true;
    return;
  }
  h.add("doctor.listen", CheckStatus::kFail,
        fmt::format("{}: the doctor's listener did not start, so no other host can check this one: {}", h.session->target(),
                    r.is_ok() ? command_failure(*r) : r.status().message()),
        fmt::format("on {}: llmctl doctor --local (a taken head port is named there)", h.node->host));
}

// `peers`: the other listening hosts by address, as the cluster's daemons
// will reach them; names are checked on their own (names.resolve).
void run_outbound(DoctorHost& h, const std::string& token, const std::string& peers) {
  auto r = h.session->run_with_input("read -r LLMCTL_TOKEN && export LLMCTL_TOKEN && exec " + h.doctor() +
                                         " --outbound --json --peers " + shell_quote(peers),
                                     token + "\n", 300);
  auto report = r.is_ok() ? parse_report(*r, h.session->target()) : Result<std::vector<CheckResult>>(r.status());
  if (!report.is_ok()) {
    h.add("doctor.outbound", CheckStatus::kFail, report.status().message());
    return;
  }
  h.outbound = std::move(report).value();
}

void stop_listener(DoctorHost& h) {
  auto r = h.session->run_plain(stop_listener_command(h.dir()), 30);
  if (!r.is_ok())
    h.add("doctor.listen", CheckStatus::kWarn,
          fmt::format("{}: stopping the doctor's listener: {}", h.session->target(), r.status().message()),
          fmt::format("on {}: kill $(cat {}/doctor/listen.pid)", h.node->host, h.node->state_dir));
}

}  // namespace

Result<std::vector<CheckResult>> run_local_doctor(SshSession& session, const NodeConfig& node,
                                                  const std::string& config_text) {
  std::string dir = doctor_dir(node);
  auto copied = session.run_with_input(fmt::format("mkdir -p {0} && cat > {0}/cluster.toml", dir), config_text, 30);
  if (!copied.is_ok()) return copied.status().with_context("copying cluster.toml");
  if (copied->exit_code != 0)
    return Status::io_error(fmt::format("{}: copying cluster.toml to {}/doctor: {}", session.target(), node.state_dir,
                                        command_failure(*copied)));
  auto r = session.run_plain(doctor_command(node) + " --local --json", 120);
  if (!r.is_ok()) return r.status().with_context("llmctl doctor --local");
  ASSIGN_OR_RETURN(auto report, parse_report(*r, session.target()));
  // Named as the file names the host (its own hostname may differ).
  for (auto& c : report) c.node = node.host;
  return report;
}

std::vector<CheckResult> cluster_doctor(const ClusterConfig& config, const ClusterDoctorOptions& o) {
  std::vector<DoctorHost> hosts;
  for (const NodeConfig* n : config.nodes()) {
    DoctorHost h;
    h.node = n;
    auto ip = n->node_ip.empty() ? resolve_ipv4(n->host) : Result<std::string>(n->node_ip);
    h.address = ip.is_ok() ? *ip : n->host;
    hosts.push_back(std::move(h));
  }
  std::vector<CheckResult> out;
  auto bundle = local_bundle();
  std::string token = random_token();
  if (!bundle.is_ok() || token.empty()) {
    out.push_back({"local", "doctor.bundle", CheckStatus::kFail,
                   bundle.is_ok() ? "cannot draw random bytes for the listeners' token" : bundle.status().message(), ""});
    return out;
  }
  auto say = [&o](const std::string& line) {
    if (o.print) o.print(line);
  };
  say(fmt::format("Connecting to {} host(s), uploading llmctl where it differs, running each host's checks", hosts.size()));
  for_each_parallel(hosts.size(), [&](size_t i) {
    if (prepare(hosts[i], o, *bundle)) {
      hosts[i].ready = true;
      run_local(hosts[i], o.config_text);
    }
  });
  // Listeners only once every host's local checks are done: they hold the ports those check.
  say("Starting the doctor's listeners, then checking every pair of hosts");
  for_each_parallel(hosts.size(), [&](size_t i) {
    if (hosts[i].ready) start_listener(hosts[i], token);
  });
  for_each_parallel(hosts.size(), [&](size_t i) {
    if (!hosts[i].listening) return;
    std::string peers;
    for (size_t k = 0; k < hosts.size(); ++k)
      if (k != i && hosts[k].listening) peers += (peers.empty() ? "" : ",") + hosts[k].address;
    if (!peers.empty()) run_outbound(hosts[i], token, peers);
  });
  for_each_parallel(hosts.size(), [&](size_t i) {
    if (hosts[i].listening) stop_listener(hosts[i]);
  });

  // A finding about host Y (from X's run) is listed under Y; X's runs name
  // peers by hostname, or by the address or name the file gives.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < hosts.size(); ++i) {
    index[hosts[i].node->host] = i;
    index[hosts[i].address] = i;
  }
  std::vector<std::vector<CheckResult>> about(hosts.size());
  std::vector<CheckResult> unplaced;
  for (auto& h : hosts) {
    for (auto& c : h.outbound) {
      auto it = index.find(c.node);
      if (it == index.end()) {
        unplaced.push_back(std::move(c));
      } else {
        c.node = hosts[it->second].node->host;
        about[it->second].push_back(std::move(c));
      }
    }
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    out.insert(out.end(), hosts[i].own.begin(), hosts[i].own.end());
    out.insert(out.end(), about[i].begin(), about[i].end());
  }
  out.insert(out.end(), unplaced.begin(), unplaced.end());
  return out;
}

}  // namespace llmctl::remote
