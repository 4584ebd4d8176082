#include "runtime/remote/cluster_launcher.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <sys/stat.h>

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
#include "runtime/remote/host_probe.h"
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
  bool uploaded = false;
  std::string state;
};

std::string mib(std::uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

// Runs fn(i) for every index on its own thread and waits for all.
template <typename Fn>
void for_each_parallel(size_t n, Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto& t : threads) t.join();
}

Result<std::string> resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list); rc != 0 || !list)
    return Status::not_found(fmt::format("cannot resolve host '{}' here to an address to advertise ({}); set node_ip",
                                         host, rc ? ::gai_strerror(rc) : "no address"));
  char text[INET_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(list->ai_addr)->sin_addr, text, sizeof text);
  ::freeaddrinfo(list);
  return std::string(text);
}

std::string new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

SshOptions ssh_options(const NodeConfig& node, const LaunchOptions& o) {
  SshOptions s;
  s.host = node.host;
  s.port = node.ssh.port;
  s.user = node.ssh.user;
  s.key_file = node.ssh.key;
  s.known_hosts_file = o.known_hosts_file;
  s.accept_new_host_keys = o.accept_new_host_keys;
  s.connect_timeout_s = o.connect_timeout_s;
  return s;
}

std::string binary(const NodeConfig& n) { return remote_path(n.install_dir) + "/llmctl"; }

std::string llmctl_command(const NodeConfig& n) {
  return binary(n) + " --state-dir " + remote_path(n.state_dir);
}

// The start command's flags for a node's resources and identity.
std::string node_flags(const Target& t) {
  std::string f = fmt::format(" --node-ip-address {} --node-name {}", shell_quote(t.address), shell_quote(t.node.host));
  if (t.node.num_gpus) f += fmt::format(" --num-gpus {}", *t.node.num_gpus);
  if (t.node.num_cpus) f += fmt::format(" --num-cpus {}", *t.node.num_cpus);
  if (!t.node.resources.empty()) f += " --resources " + shell_quote(nlohmann::json(t.node.resources).dump());
  return f;
}

// The token arrives on stdin so it never shows in a process list on the host.
std::string with_token_and_env(const ClusterConfig& c, const std::string& command) {
  std::string out = "read -r LLMCTL_TOKEN && export LLMCTL_TOKEN && exec ";
  if (!c.env.empty()) out += "env ";
  for (const auto& [k, v] : c.env) out += fmt::format("{} ", shell_quote(k + "=" + v));
  return out + command;
}

std::string stop_command(const NodeConfig& n) {
  // Without the binary (a removed install dir) the pid files still say what to stop.
  return fmt::format(
      "if [ -x {0} ]; then {1} stop; else for f in agent head; do p=$(cat {2}/$f.pid 2>/dev/null) && "
      "kill \"$p\" 2>/dev/null; done; true; fi",
      binary(n), llmctl_command(n), remote_path(n.state_dir));
}

std::string first_line(const std::string& text) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string command_failure(const CommandResult& r) {
  std::string why = first_line(r.stderr_text.empty() ? r.stdout_text : r.stderr_text);
  return fmt::format("exit status {}{}{}", r.exit_code, why.empty() ? "" : ": ", why);
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
  std::uint64_t need = 0;
  for (const auto& f : bundle.files) {
    auto it = t.facts.sha256.find(f.relative_path);
    if (it == t.facts.sha256.end() || it->second != f.sha256) {
      t.to_upload.push_back(&f);
      need += f.size;
    }
  }
  // Each file is written beside its old copy, then renamed over it.
  if (need > 0) need += 16u << 20;
  if (need > 0 && t.facts.free_bytes >= 0 && static_cast<std::uint64_t>(t.facts.free_bytes) < need)
    problems.push_back(fmt::format("no disk space: the bundle needs {} in {}, but {} has {} free", mib(need),
                                   t.node.install_dir, t.facts.disk_path, mib(static_cast<std::uint64_t>(t.facts.free_bytes))));
  if (t.role == "head" && t.facts.head_pid == 0 && t.facts.listening_ports.count(c.ports.head))
    problems.push_back(fmt::format("port {} ([ports] head, the control plane) is in use by another process; "
                                   "free it or choose another port in the file", c.ports.head));
  if (problems.empty()) return Status::ok();
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
  return Status::unavailable(fmt::format("{}: {}", t.session->target(), all));
}

Status upload(Target& t, Printer& print) {
  std::string inst = remote_path(t.node.install_dir);
  for (const BundleFile* f : t.to_upload) {
    std::string dest = inst + "/" + shell_quote(f->relative_path);
    std::string command = fmt::format("mkdir -p {0}/lib && cat > {1}.upload && chmod {2} {1}.upload && "
                                      "mv -f {1}.upload {1} && sha256sum {1}",
                                      inst, dest, f->executable ? "755" : "644");
    print(fmt::format("{}: uploading {} ({})", t.node.host, f->relative_path, mib(f->size)));
    int shown = 0;
    auto r = t.session->run_with_file(
        command, f->local_path,
        [&](std::uint64_t sent, std::uint64_t total) {
          int quarter = total ? static_cast<int>(sent * 4 / total) : 4;
          if (quarter > shown && quarter < 4) print(fmt::format("{}: {} {}%", t.node.host, f->relative_path, quarter * 25));
          shown = std::max(shown, quarter);
        },
        120);
    if (!r.is_ok()) return r.status().with_context(fmt::format("uploading {}", f->relative_path));
    if (r->exit_code != 0)
      return Status::io_error(fmt::format("{}: uploading {} to {}: {}", t.session->target(), f->relative_path,
                                          t.node.install_dir, command_failure(*r)));
    if (r->stdout_text.rfind(f->sha256, 0) != 0)
      return Status::io_error(fmt::format("{}: {} arrived with another SHA-256 ({}) than sent ({})", t.session->target(),
                                           f->relative_path, r->stdout_text.substr(0, 64), f->sha256));
    print(fmt::format("{}: {} uploaded, SHA-256 checked", t.node.host, f->relative_path));
  }
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
  for (auto& t : targets) {
    bool daemon = t.role == "head" ? head_running : t.facts.agent_pid != 0;
    if (!daemon) {
      t.action = "start";
    } else if (t.role == "worker" && !head_running) {
      t.action = "restart";  // its agent belongs to a head that no longer runs
    } else {
      t.action = "running";
    }
    any_change = any_change || t.action != "running" || !t.to_upload.empty();
    std::string up = t.to_upload.empty()
                         ? "bundle up to date"
                         : fmt::format("upload {} file(s), {}", t.to_upload.size(), mib([&] {
                                         std::uint64_t s = 0;
                                         for (auto* f : t.to_upload) s += f->size;
                                         return s;
                                       }()));
    plan.push_back(fmt::format("  {:<16} {:<6} {:<15} {}; {}", t.node.host, t.role, t.address, up,
                               t.action == "running" ? "already running" : t.action));
    if (t.action == "running" && !t.to_upload.empty())
      rep.notices.push_back(fmt::format("{} keeps running the llmctl it started with; `llmctl down` then `up` "
                                        "runs the uploaded one", t.node.host));
  }
  for (auto& t : removed)
    plan.push_back(fmt::format("  {:<16} {:<6} {:<15} stop (no longer in the file)", t.node.host, t.role, t.address));
  if (!c.models.empty()) {
    std::vector<std::string> names;
    for (const auto& m : c.models) names.push_back(m.name);
    rep.notices.push_back(fmt::format("skipping model(s) {}: serve over up is not supported yet", join(names, ", ")));
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
  };
  if (o.dry_run) {
    print(plan_text);
    print("Dry run: nothing was changed.");
    rep.changed = false;
    outcomes(true);
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

  // 4. The head, then the workers in parallel (and the removed ones stopped).
  if (head.action == "start") {
    print(fmt::format("{}: starting the head at {}", head.node.host, rep.head_address));
    std::string command = llmctl_command(head.node) +
                          fmt::format(" start --head --port {} --dashboard-port {}", c.ports.head, c.ports.dashboard) +
                          node_flags(head);
    auto r = head.session->run_with_input(with_token_and_env(c, command), token + "\n", 60);
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
    print(fmt::format("{}: {} the agent, joining {}", t.node.host, t.action == "restart" ? "restarting" : "starting",
                      rep.head_address));
    std::string command = (t.action == "restart" ? llmctl_command(t.node) + " stop >/dev/null; " : std::string()) +
                          llmctl_command(t.node) + " start --address " + shell_quote(rep.head_address) + node_flags(t);
    auto r = t.session->run_with_input(with_token_and_env(c, command), token + "\n", 60);
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
