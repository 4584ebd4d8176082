#include "runtime/remote/cluster_launcher.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/remote/bundle.h"
#include "runtime/remote/cluster_doctor.h"
#include "runtime/remote/host_probe.h"
#include "runtime/remote/remote_llmctl.h"
#include "runtime/remote/ssh_session.h"

namespace llmctl::remote {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// One host as up/down sees it.
struct Target {
  NodeConfig node;
  std::string role;      // "head" or "worker"
  std::string address;   // node_ip, else what host resolves to here
  bool in_file = true;   // false: only in the record (removed from the file)
  std::unique_ptr<SshSession> session;
  HostFacts facts;
  std::vector<const BundleFile*> to_upload;
  std::string action;    // what up will do / did
  std::string restart_reason;
  bool uploaded = false;
  std::string state;
};

std::string new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

// The start command's flags for a node's resources and identity.
std::string node_flags(const Target& t) {
  std::string f = fmt::format(" --node-ip-address {} --node-name {}", shell_quote(t.address), shell_quote(t.node.host));
  if (t.node.num_gpus) f += fmt::format(" --num-gpus {}", *t.node.num_gpus);
  if (t.node.num_cpus) f += fmt::format(" --num-cpus {}", *t.node.num_cpus);
  if (!t.node.resources.empty()) f += " --resources " + shell_quote(nlohmann::json(t.node.resources).dump());
  return f;
}

SshOptions ssh_options(const NodeConfig& node, const LaunchOptions& o) {
  return ssh_options_for(node, o.known_hosts_file, o.accept_new_host_keys, o.connect_timeout_s);
}

std::string stop_command(const NodeConfig& n) {
  // Without the binary (a removed install dir) the pid files still say what to stop.
  // A doctor listener left from an interrupted `doctor cluster.toml` goes too.
  return fmt::format(
      "p=$(cat {2}/doctor/listen.pid 2>/dev/null) && kill \"$p\" 2>/dev/null; "
      "if [ -x {0} ]; then {1} stop; else for f in agent head; do p=$(cat {2}/$f.pid 2>/dev/null) && "
      "kill \"$p\" 2>/dev/null; done; true; fi",
      remote_binary(n), llmctl_command(n), remote_path(n.state_dir));
}

// Stops a node's daemons ahead of its start command; before the token is read
// (with_token_and_env execs the command, so nothing may follow it).
std::string restart_prefix(const Target& t) {
  return t.action == "restart" ? llmctl_command(t.node) + " stop </dev/null >/dev/null 2>&1; " : std::string();
}

// The doctor's checks of ports only the head's services bind: a worker whose
// port is taken still joins and works.
bool binds_only_on_head(const std::string& check_id) {
  return check_id == "ports.head" || check_id == "ports.dashboard" || check_id == "ports.client" ||
         check_id == "ports.api";
}

// --- the launching machine's record ----------------------------------------

struct Record {
  std::string address, token;
  std::vector<Target> nodes;  // node and role only
};

Record read_record(const std::string& path) {
  Record r;
  std::ifstream in(path);
  if (!in) return r;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return r;
  r.address = j.value("address", "");
  r.token = j.value("token", "");
  for (const auto& n : j.value("nodes", nlohmann::json::array())) {
    Target t;
    t.role = n.value("role", "worker");
    t.node.host = n.value("host", "");
    t.address = n.value("address", "");
    t.node.ssh.user = n.value("ssh_user", "root");
    t.node.ssh.port = n.value("ssh_port", 22);
    t.node.ssh.key = n.value("ssh_key", "");
    t.node.state_dir = n.value("state_dir", t.node.state_dir);
    t.node.install_dir = n.value("install_dir", t.node.install_dir);
    t.in_file = false;
    if (!t.node.host.empty()) r.nodes.push_back(std::move(t));
  }
  return r;
}

Status write_record(const std::string& path, const std::string& address, const std::string& token,
                    const std::vector<Target*>& nodes) {
  nlohmann::json list = nlohmann::json::array();
  for (const Target* t : nodes)
    list.push_back({{"host", t->node.host}, {"role", t->role}, {"address", t->address},
                    {"ssh_user", t->node.ssh.user}, {"ssh_port", t->node.ssh.port}, {"ssh_key", t->node.ssh.key},
                    {"state_dir", t->node.state_dir}, {"install_dir", t->node.install_dir}});
  nlohmann::json j = {{"address", address}, {"token", token}, {"nodes", list}};
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::io_error(fmt::format("cannot write {}", tmp));
    ::chmod(tmp.c_str(), 0600);  // holds the cluster token
    out << j.dump(2) << "\n";
    if (!out.flush()) return Status::io_error(fmt::format("cannot write {}", tmp));
  }
  fs::rename(tmp, path, ec);
  if (ec) return Status::io_error(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status::ok();
}

// --- steps ------------------------------------------------------------------

class Printer {
 public:
  explicit Printer(const LaunchOptions& o) : o_(o) {}
  void operator()(const std::string& line) {
    if (!o_.print) return;
    std::lock_guard lock(mutex_);
    o_.print(line);
  }

 private:
  const LaunchOptions& o_;
  std::mutex mutex_;
};

// Connects and probes; the error names the host and the step.
Status probe(Target& t, const LaunchOptions& o) {
  auto session = SshSession::connect(ssh_options(t.node, o));
  if (!session.is_ok()) return session.status();
  t.session = std::move(session).value();
  auto r = t.session->run_plain(probe_command(t.node.install_dir, t.node.state_dir), 30);
  if (!r.is_ok()) return r.status();
  auto facts = parse_probe_output(r->stdout_text);
  if (!facts.is_ok()) return facts.status().with_context(t.session->target());
  t.facts = std::move(facts).value();
  return Status::ok();
}

// The checks that make up's pre-flight; every problem of the host in one message.
Status check_host(Target& t, const ClusterConfig& c, const Bundle& bundle) {
  std::vector<std::string> problems;
  std::string local = local_os_arch();
  if (t.facts.os_arch != local)
    problems.push_back(fmt::format("wrong OS/architecture: the host is {}, this llmctl is built for {}",
                                   t.facts.os_arch, local));
  t.to_upload = files_to_upload(t.facts, bundle);
  std::uint64_t need = 0;
  for (const BundleFile* f : t.to_upload) need += f->size;
  // Each file is written beside its old copy, then renamed over it.
  if (need > 0) need += 16u << 20;
  if (need > 0 && t.facts.free_bytes >= 0 && static_cast<std::uint64_t>(t.facts.free_bytes) < need)
    problems.push_back(fmt::format("no disk space: the bundle needs {} in {}, but {} has {} free", format_mib(need),
                                   t.node.install_dir, t.facts.disk_path, format_mib(static_cast<std::uint64_t>(t.facts.free_bytes))));
  if (t.role == "head" && t.facts.head_pid == 0 && t.facts.listening_ports.count(c.ports.head))
    problems.push_back(t.facts.doctor_pid != 0
                           ? fmt::format("port {} ([ports] head) is held by a `llmctl doctor` listener left running "
                                         "(pid {}; it exits within 15 minutes, or `llmctl down` the file stops it)",
                                         c.ports.head, t.facts.doctor_pid)
                           : fmt::format("port {} ([ports] head, the control plane) is in use by another process; "
                                         "free it or choose another port in the file", c.ports.head));
  if (problems.empty()) return Status::ok();
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
  return Status::unavailable(fmt::format("{}: {}", t.session->target(), all));
}

Status upload(Target& t, Printer& print) {
  RETURN_IF_ERROR(upload_bundle(*t.session, t.node, t.to_upload, [&print](const std::string& line) { print(line); }));
  t.uploaded = !t.to_upload.empty();
  return Status::ok();
}

// The head's node list (`llmctl nodes --json` run on the head host).
Result<nlohmann::json> head_nodes(Target& head) {
  auto r = head.session->run_plain(llmctl_command(head.node) + " nodes --json", 15);
  if (!r.is_ok()) return r.status();
  if (r->exit_code != 0)
    return Status::unavailable(fmt::format("{}: llmctl nodes: {}", head.session->target(), command_failure(*r)));
  auto j = nlohmann::json::parse(r->stdout_text, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    return Status::unavailable(fmt::format("{}: llmctl nodes printed no JSON list", head.session->target()));
  return j;
}

// name -> state of every node the head lists (a name listed twice: Active wins).
std::map<std::string, std::string> states_by_name(const nlohmann::json& nodes) {
  std::map<std::string, std::string> out;
  for (const auto& n : nodes) {
    std::string name = n.value("name", ""), state = n.value("state", "");
    if (out[name] != "Active") out[name] = state;
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

// Stops a node's daemons, checks their pids are gone, removes the state dir unless kept.
Status stop_node(Target& t, bool keep_state, std::string& what) {
  auto r = t.session->run_plain(stop_command(t.node), 60);
  if (!r.is_ok()) return r.status();
  if (r->exit_code != 0)
    return Status::internal(fmt::format("{}: llmctl stop: {}", t.session->target(), command_failure(*r)));
  std::vector<std::string> stopped, left;
  for (auto [name, pid] : {std::pair{"agent", t.facts.agent_pid}, std::pair{"head", t.facts.head_pid}}) {
    if (pid == 0) continue;
    auto alive = t.session->run_plain(fmt::format("kill -0 {} 2>/dev/null", pid), 10);
    if (alive.is_ok() && alive->exit_code == 0)
      left.push_back(fmt::format("the {} (pid {})", name, pid));
    else
      stopped.push_back(fmt::format("the {} (pid {})", name, pid));
  }
  if (!left.empty())
    return Status::internal(fmt::format("{}: {} still running after llmctl stop", t.session->target(), join(left, " and ")));
  what = stopped.empty() ? "nothing was running" : "stopped " + join(stopped, " and ");
  if (!keep_state) {
    auto rm = t.session->run_plain("rm -rf " + remote_path(t.node.state_dir), 60);
    if (!rm.is_ok()) return rm.status();
    if (rm->exit_code != 0)
      return Status::io_error(fmt::format("{}: removing the state dir {}: {}", t.session->target(), t.node.state_dir,
                                          command_failure(*rm)));
    what += fmt::format("; removed {}", t.node.state_dir);
  }
  return Status::ok();
}

std::vector<Target> file_targets(const ClusterConfig& c, std::vector<std::string>& errors) {
  std::vector<Target> out;
  for (const NodeConfig* n : c.nodes()) {
    Target t;
    t.node = *n;
    t.role = n == &c.head ? "head" : "worker";
    if (!n->node_ip.empty()) {
      t.address = n->node_ip;
    } else if (auto ip = resolve_ipv4(n->host); ip.is_ok()) {
      t.address = *ip;
    } else {
      errors.push_back(fmt::format("{}: {}", n->host, ip.status().message()));
    }
    out.push_back(std::move(t));
  }
  return out;
}

void fill_urls(LaunchReport& rep, const ClusterConfig& c, const std::string& head_ip, const std::string& token_file) {
  rep.cluster = c.name;
  rep.head_address = fmt::format("{}:{}", head_ip, c.ports.head);
  rep.dashboard_url = fmt::format("http://{}:{}", head_ip, c.ports.dashboard);
  rep.api_url = fmt::format("http://{}:{}/v1", head_ip, c.ports.api);
  rep.token_file = token_file;
}

}  // namespace

std::string launch_record_file(const std::string& local_state_dir, const std::string& cluster_name) {
  return fmt::format("{}/clusters/{}.json", local_state_dir, cluster_name);
}

LaunchReport cluster_up(const ClusterConfig& c, const LaunchOptions& o) {
  LaunchReport rep;
  Printer print(o);
  std::string record_path = launch_record_file(o.local_state_dir, c.name);
  std::vector<Target> targets = file_targets(c, rep.errors);
  fill_urls(rep, c, targets[0].address, record_path);
  if (!rep.errors.empty()) {
    rep.failed_stage = "pre-flight";
    return rep;
  }
  auto bundle = local_bundle();
  if (!bundle.is_ok()) {
    rep.errors.push_back("this machine: " + bundle.status().message());
    rep.failed_stage = "pre-flight";
    return rep;
  }
  Record record = read_record(record_path);
  std::vector<Target> removed;
  for (auto& r : record.nodes) {
    bool listed = false;
    for (const auto& t : targets) listed = listed || (t.node.host == r.node.host && t.node.state_dir == r.node.state_dir);
    if (!listed) removed.push_back(std::move(r));
  }

  // 1. Pre-flight, every host at once; nothing changes anywhere unless all pass.
  print(fmt::format("Pre-flight on {} host(s): connect, host key, authentication, OS/architecture, disk, ports",
                    targets.size()));
  std::vector<Status> checks(targets.size());
  for_each_parallel(targets.size(), [&](size_t i) {
    checks[i] = probe(targets[i], o);
    if (checks[i].is_ok()) checks[i] = check_host(targets[i], c, *bundle);
  });
  for (size_t i = 0; i < targets.size(); ++i)
    if (!checks[i].is_ok()) rep.errors.push_back(fmt::format("{}: {}", targets[i].node.host, checks[i].message()));
  if (!rep.errors.empty()) {
    rep.failed_stage = "pre-flight";
    return rep;
  }

  // 2. What runs already, and so what to do.
  Target& head = targets[0];
  bool head_running = head.facts.head_pid != 0;
  std::map<std::string, std::string> states;
  if (head_running) {
    auto nodes = head_nodes(head);
    if (!nodes.is_ok()) {
      rep.errors.push_back(fmt::format("{}: the head runs (pid {}) but does not answer: {}", head.node.host,
                                       head.facts.head_pid, nodes.status().message()));
      rep.failed_stage = "pre-flight";
      return rep;
    }
    states = states_by_name(*nodes);
  }
  std::string token;
  if (auto j = nlohmann::json::parse(head.facts.cluster_json, nullptr, false); j.is_object()) token = j.value("token", "");
  if (token.empty()) token = record.token;
  if (token.empty()) token = new_token();
  if (token.empty()) {
    rep.errors.push_back("this machine: cannot draw random bytes for a cluster token");
    rep.failed_stage = "pre-flight";
    return rep;
  }

  std::vector<std::string> plan;
  bool any_change = !removed.empty();
  const std::string& new_sha = bundle->files.front().sha256;
  // A daemon whose executable is not this llmctl (uploaded now or by an
  // earlier `up` or `doctor`) runs an old binary; unreadable: assume current.
  auto runs_old_binary = [&](const Target& t) {
    auto old = [&](pid_t pid, const std::string& sha) { return pid != 0 && !sha.empty() && sha != new_sha; };
    return old(t.facts.head_pid, t.facts.head_exe_sha256) || old(t.facts.agent_pid, t.facts.agent_exe_sha256);
  };
  for (auto& t : targets) {
    bool daemon = t.role == "head" ? head_running : t.facts.agent_pid != 0;
    t.restart_reason.clear();
    if (!daemon) {
      t.action = "start";
    } else if (t.role == "worker" && !head_running) {
      t.action = "restart";
      t.restart_reason = "its agent belongs to a head that no longer runs";
    } else if (runs_old_binary(t)) {
      t.action = "restart";
      t.restart_reason = "it runs another llmctl than this one";
    } else {
      t.action = "running";
    }
    any_change = any_change || t.action != "running" || !t.to_upload.empty();
    std::string up = t.to_upload.empty()
                         ? "bundle up to date"
                         : fmt::format("upload {} file(s), {}", t.to_upload.size(), format_mib([&] {
                                         std::uint64_t s = 0;
                                         for (auto* f : t.to_upload) s += f->size;
                                         return s;
                                       }()));
    // Only when the daemon's executable could not be read (else it is restarted).
    if (t.action == "running" && !t.to_upload.empty())
      rep.notices.push_back(fmt::format("{} keeps running the llmctl it started with; `llmctl down` then `up` "
                                        "runs the uploaded one", t.node.host));
    plan.push_back(fmt::format("  {:<16} {:<6} {:<15} {}; {}", t.node.host, t.role, t.address, up,
                               t.action == "running" ? std::string("already running")
                               : t.action == "restart" ? "restart (" + t.restart_reason + ")"
                                                       : t.action));
  }
  for (auto& t : removed)
    plan.push_back(fmt::format("  {:<16} {:<6} {:<15} stop (no longer in the file)", t.node.host, t.role, t.address));
  // The models, served from the head once every node is Active.
  bool nodes_restarted = head.action != "running";
  for (const auto& t : targets) nodes_restarted = nodes_restarted || t.action == "restart";
  std::vector<ModelPlan> models =
      plan_models(c, head.node, rep.head_address, head.facts, new_sha, nodes_restarted);
  for (const auto& m : models) {
    if (m.action == "stop" && m.pid == 0) continue;  // files of a serve that exited: removed quietly
    any_change = any_change || m.action == "start" || m.action == "restart" || m.action == "stop" ||
                 (m.action == "refuse" && m.pid != 0);
    std::string what = m.action == "running"   ? "already serving"
                       : m.action == "refuse"  ? "refused: " + m.reason
                       : m.action == "stop"    ? fmt::format("stop its serve (pid {}; {})", m.pid, m.reason)
                       : m.action == "restart" ? "restart (" + m.reason + ")"
                                               : "start";
    plan.push_back(fmt::format("  model {:<10} tp {:<3} {} {}", m.model.name, m.model.tp,
                               m.port ? fmt::format("http://{}:{}/v1", head.address, m.port) : std::string("-"), what));
  }
  std::string plan_text = fmt::format("Plan for cluster \"{}\" (head {}):\n{}", c.name, rep.head_address, join(plan, "\n"));

  auto outcomes = [&](bool dry) {
    rep.nodes.clear();
    for (auto& t : targets)
      rep.nodes.push_back({t.node.host, t.role, t.address,
                           dry && t.action != "running" ? "would " + t.action : (t.action == "start" ? "started" : t.action == "restart" ? "restarted" : "running"),
                           t.uploaded, t.state});
    for (auto& t : removed)
      rep.nodes.push_back({t.node.host, t.role, t.address, dry ? "would stop" : "stopped (removed from the file)", false, ""});
    if (!dry) return;
    rep.models.clear();
    for (const auto& m : models) {
      if (m.action == "stop" && m.pid == 0) continue;
      ModelOutcome out;
      out.name = m.model.name;
      out.action = m.action == "running" ? "running" : m.action == "refuse" ? "refused" : "would " + m.action;
      out.reason = m.reason;
      out.port = m.port;
      out.tp = m.model.tp;
      out.pid = m.pid;
      if (m.port) out.url = fmt::format("http://{}:{}/v1", head.address, m.port);
      out.log_file = head.node.state_dir + "/logs/serve-" + m.model.name + ".log";
      rep.models.push_back(std::move(out));
    }
  };
  // A model the file asks for that serve cannot run fails up, after the rest is done.
  auto refuse_models = [&] {
    for (const auto& m : models)
      if (m.action == "refuse")
        rep.errors.push_back(fmt::format("{}: model {} is not served: {}", head.node.host, m.model.name, m.reason));
    if (!rep.errors.empty() && rep.failed_stage.empty()) rep.failed_stage = "models";
  };
  if (o.dry_run) {
    print(plan_text);
    print("Dry run: nothing was changed.");
    rep.changed = false;
    outcomes(true);
    refuse_models();
    return rep;
  }
  if (any_change && o.confirm && !o.confirm(plan_text)) {
    rep.aborted = true;
    outcomes(true);
    return rep;
  }
  if (any_change) print(plan_text);

  // 3. Upload where the bundle differs.
  std::vector<Status> results(targets.size());
  for_each_parallel(targets.size(), [&](size_t i) { results[i] = upload(targets[i], print); });
  for (size_t i = 0; i < targets.size(); ++i)
    if (!results[i].is_ok()) rep.errors.push_back(fmt::format("{}: {}", targets[i].node.host, results[i].message()));
  if (!rep.errors.empty()) {
    rep.failed_stage = "upload";
    outcomes(false);
    return rep;
  }

  // 3b. The doctor's local checks where a daemon is to start (a running one
  //     holds the ports they check); a failure stops up before anything starts.
  if (!o.skip_doctor && !o.config_text.empty()) {
    std::vector<Result<std::vector<netcheck::CheckResult>>> found(targets.size(), Status::not_found("not checked"));
    for_each_parallel(targets.size(), [&](size_t i) {
      Target& t = targets[i];
      if (t.action == "start") found[i] = run_local_doctor(*t.session, t.node, o.config_text);
    });
    for (size_t i = 0; i < targets.size(); ++i) {
      if (targets[i].action != "start") continue;
      const std::string& host = targets[i].node.host;
      if (!found[i].is_ok()) {
        rep.errors.push_back(fmt::format("{}: the doctor's checks did not run: {}", host, found[i].status().message()));
        continue;
      }
      auto summary = netcheck::summarize(*found[i]);
      print(fmt::format("{}: doctor: {} ok, {} warn, {} fail", host, summary.ok, summary.warn, summary.fail));
      for (const auto& check : *found[i]) {
        std::string line = fmt::format("{}: doctor {} {}{}", host, check.id, check.message,
                                       check.fix.empty() ? "" : " (fix: " + check.fix + ")");
        bool harmless = targets[i].role == "worker" && binds_only_on_head(check.id);
        // A head that stopped while its model servers kept running: they hold the API port.
        bool ours = targets[i].role == "head" && check.id == "ports.api" &&
                    std::any_of(head.facts.served.begin(), head.facts.served.end(),
                                [](const auto& s) { return s.second.pid != 0; });
        if (check.status == netcheck::CheckStatus::kFail && !harmless && !ours) rep.errors.push_back(line);
        else if (check.status == netcheck::CheckStatus::kFail && ours) rep.notices.push_back(line + "; held by a model server of this cluster");
        else if (check.status == netcheck::CheckStatus::kFail) rep.notices.push_back(line + "; only the head binds it");
        else if (check.status == netcheck::CheckStatus::kWarn) rep.notices.push_back(line);
      }
    }
    if (!rep.errors.empty()) {
      rep.failed_stage = "doctor";
      outcomes(false);
      return rep;
    }
  }

  // 4. The head, then the workers in parallel (and the removed ones stopped).
  // A head that runs an old binary goes first: the control plane is then the
  // newest part of the cluster, its state log and token carry over, and
  // agents still running re-attach to it on their own before their own
  // restart below.
  if (head.action == "start" || head.action == "restart") {
    print(fmt::format("{}: {} the head at {}{}", head.node.host, head.action == "start" ? "starting" : "restarting",
                      rep.head_address, head.restart_reason.empty() ? "" : " (" + head.restart_reason + ")"));
    std::string command = llmctl_command(head.node) +
                          fmt::format(" start --head --port {} --dashboard-port {}", c.ports.head, c.ports.dashboard) +
                          node_flags(head);
    auto r = head.session->run_with_input(restart_prefix(head) + with_token_and_env(c.env, command), token + "\n", 60);
    Status s = !r.is_ok() ? r.status()
               : r->exit_code != 0 ? Status::unavailable(fmt::format("{}: llmctl start --head: {}", head.session->target(), command_failure(*r)))
                                   : Status::ok();
    if (!s.is_ok()) {
      rep.errors.push_back(fmt::format("{}: {}", head.node.host, s.message()));
      rep.failed_stage = "start";
      outcomes(false);
      return rep;
    }
  }
  std::vector<Target*> recorded;
  for (auto& t : targets) recorded.push_back(&t);
  if (Status s = write_record(record_path, rep.head_address, token, recorded); !s.is_ok())
    rep.errors.push_back("this machine: " + s.message());

  std::vector<Status> started(targets.size()), stopped(removed.size());
  std::thread stopper([&] {
    for_each_parallel(removed.size(), [&](size_t i) {
      Target& t = removed[i];
      stopped[i] = probe(t, o);
      std::string what;
      if (stopped[i].is_ok()) stopped[i] = stop_node(t, false, what);
      if (stopped[i].is_ok()) print(fmt::format("{}: removed from the file: {}", t.node.host, what));
    });
  });
  for_each_parallel(targets.size(), [&](size_t i) {
    Target& t = targets[i];
    if (t.role == "head" || t.action == "running") return;
    print(fmt::format("{}: {} the agent, joining {}{}", t.node.host, t.action == "restart" ? "restarting" : "starting",
                      rep.head_address, t.restart_reason.empty() ? "" : " (" + t.restart_reason + ")"));
    std::string command = llmctl_command(t.node) + " start --address " + shell_quote(rep.head_address) + node_flags(t);
    auto r = t.session->run_with_input(restart_prefix(t) + with_token_and_env(c.env, command), token + "\n", 60);
    started[i] = !r.is_ok() ? r.status()
                 : r->exit_code != 0 ? Status::unavailable(fmt::format("{}: llmctl start: {}", t.session->target(), command_failure(*r)))
                                     : Status::ok();
  });
  stopper.join();
  for (size_t i = 0; i < targets.size(); ++i)
    if (!started[i].is_ok()) rep.errors.push_back(fmt::format("{}: {}", targets[i].node.host, started[i].message()));
  for (size_t i = 0; i < removed.size(); ++i)
    if (!stopped[i].is_ok()) rep.errors.push_back(fmt::format("{}: {}", removed[i].node.host, stopped[i].message()));
  rep.changed = any_change;
  if (!rep.errors.empty()) {
    rep.failed_stage = "start";
    outcomes(false);
    return rep;
  }

  // 5. Until every node of the file is Active, as the head sees it.
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000));
  std::vector<std::string> waiting;
  Status last = Status::ok();
  for (;;) {
    auto nodes = head_nodes(head);
    waiting.clear();
    if (nodes.is_ok()) {
      states = states_by_name(*nodes);
      for (auto& t : targets) {
        t.state = states.count(t.node.host) ? states[t.node.host] : "";
        if (t.state != "Active") waiting.push_back(fmt::format("{} ({})", t.node.host, t.state.empty() ? "not joined" : t.state));
      }
      if (waiting.empty()) break;
    } else {
      last = nodes.status();
      waiting.push_back(fmt::format("the head ({})", last.message()));
    }
    if (Clock::now() >= deadline) {
      rep.errors.push_back(fmt::format("{}: not every node is Active after {} s (--timeout): {}", head.node.host,
                                       o.timeout_s, join(waiting, ", ")));
      rep.failed_stage = "wait";
      outcomes(false);
      return rep;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  outcomes(false);

  // 6. The models, from the head: stopped, started, each until /health says 200.
  if (!models.empty()) {
    auto model_deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000));
    std::vector<std::string> errors;
    rep.models = apply_model_plans(*head.session, head.node, head.address, models, model_deadline,
                                   [&print](const std::string& line) { print(line); }, errors);
    for (auto& e : errors) rep.errors.push_back(std::move(e));
    if (!rep.errors.empty()) rep.failed_stage = "models";
  }
  refuse_models();
  return rep;
}

LaunchReport cluster_down(const ClusterConfig& c, const LaunchOptions& o) {
  LaunchReport rep;
  Printer print(o);
  std::string record_path = launch_record_file(o.local_state_dir, c.name);
  std::vector<std::string> unresolved;
  std::vector<Target> targets = file_targets(c, unresolved);  // an unresolvable node_ip does not matter here
  fill_urls(rep, c, targets[0].address.empty() ? c.head.host : targets[0].address, record_path);
  Record record = read_record(record_path);
  for (auto& r : record.nodes) {
    bool listed = false;
    for (const auto& t : targets) listed = listed || (t.node.host == r.node.host && t.node.state_dir == r.node.state_dir);
    if (!listed) targets.push_back(std::move(r));
  }
  // Workers (every one the file or the record names) in parallel, then the head(s).
  std::vector<size_t> workers, heads;
  for (size_t i = 0; i < targets.size(); ++i) (targets[i].role == "head" ? heads : workers).push_back(i);
  std::vector<Status> results(targets.size());
  std::vector<std::string> what(targets.size());
  auto stop_one = [&](size_t i) {
    Target& t = targets[i];
    results[i] = probe(t, o);
    if (results[i].is_ok()) results[i] = stop_node(t, o.keep_state, what[i]);
    if (results[i].is_ok()) print(fmt::format("{}: {}", t.node.host, what[i]));
  };
  // The head's model servers first: each removes its ranks from the workers as it stops.
  std::mutex models_mutex;
  std::vector<std::string> model_errors;
  for_each_parallel(heads.size(), [&](size_t k) {
    Target& t = targets[heads[k]];
    if (!probe(t, o).is_ok() || t.facts.served.empty()) return;  // an unreachable head is reported below
    auto r = t.session->run_plain(stop_serve_script(t.node, {}, 15), 60);
    std::lock_guard lock(models_mutex);
    if (!r.is_ok() || r->exit_code != 0) {
      model_errors.push_back(fmt::format("{}: stopping the model servers: {}", t.node.host,
                                         !r.is_ok() ? r.status().message() : command_failure(*r)));
      return;
    }
    std::istringstream lines(r->stdout_text);
    std::string how, name;
    long pid = 0;
    while (lines >> how >> name >> pid) {
      print(fmt::format("{}: model {}: {} its serve (pid {})", t.node.host, name, how, pid));
      ModelOutcome m;
      m.name = name;
      m.action = how;
      m.pid = static_cast<pid_t>(pid);
      rep.models.push_back(std::move(m));
    }
  });
  for (auto& e : model_errors) rep.errors.push_back(std::move(e));
  for_each_parallel(workers.size(), [&](size_t k) { stop_one(workers[k]); });
  for_each_parallel(heads.size(), [&](size_t k) { stop_one(heads[k]); });
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!results[i].is_ok()) rep.errors.push_back(fmt::format("{}: {}", targets[i].node.host, results[i].message()));
    rep.nodes.push_back({targets[i].node.host, targets[i].role, targets[i].address,
                         !results[i].is_ok() ? "failed" : (targets[i].facts.head_pid || targets[i].facts.agent_pid) ? "stopped" : "not running",
                         false, ""});
  }
  if (!rep.errors.empty()) {
    rep.failed_stage = "stop";
    return rep;
  }
  rep.changed = true;
  // The token goes with the cluster; with --keep-state the head keeps it and the next `up` reuses it.
  if (!o.keep_state) {
    std::error_code ec;
    fs::remove(record_path, ec);
  }
  return rep;
}

}  // namespace llmctl::remote
