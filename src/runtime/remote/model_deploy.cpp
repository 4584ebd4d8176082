#include "runtime/remote/model_deploy.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "runtime/remote/remote_llmctl.h"

namespace llmctl::remote {
namespace {

bool is_file_name(const std::string& name) {
  if (name.empty() || name[0] == '.' || name[0] == '-') return false;
  for (char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

std::string serve_dir(const NodeConfig& head) { return remote_path(head.state_dir) + "/serve"; }

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

// Starts a plan's serve detached; prints "pid=N".
std::string start_script(const NodeConfig& head, const ModelPlan& p) {
  std::string dir = serve_dir(head), name = shell_quote(p.model.name);
  return fmt::format(
      "mkdir -p {0} {1}/logs && printf '%s\\n' {2} > {0}/{3}.cmd && cd / && "
      "{{ setsid nohup {4} >> {5} 2>&1 < /dev/null & }} && echo \"$!\" > {0}/{3}.pid && echo \"pid=$!\"",
      dir, remote_path(head.state_dir), shell_quote(p.command), name, p.command, serve_log_file(head, p.model.name));
}

// One poll of every pending model: "health NAME CODE", or "exited NAME" and
// "log NAME LINE" (the log's last lines).
std::string poll_script(const NodeConfig& head, const std::vector<const ModelPlan*>& pending) {
  std::string out;
  for (const ModelPlan* p : pending) {
    std::string name = shell_quote(p->model.name);
    out += fmt::format(
        "p=$(cat {0}/{1}.pid 2>/dev/null); if {2}; then printf 'health %s %s\\n' {1} \"$({3} http-status --port {4} "
        "2>/dev/null)\"; else printf 'exited %s\\n' {1}; tail -n 4 {5} 2>/dev/null | sed 's/^/log {6} /'; fi; ",
        serve_dir(head), name, serve_alive_test(), remote_binary(head), p->port, serve_log_file(head, p->model.name),
        p->model.name);
  }
  return out + "true";
}

}  // namespace

std::string unsupported_reason(const ModelConfig& m) {
  std::vector<std::string> why;
  if (!is_file_name(m.name))
    why.push_back(fmt::format("the name \"{}\" must be letters, digits, '.', '_' or '-' (it names files on the head)",
                              m.name));
  if (m.pp > 1) why.push_back(fmt::format("pipeline parallel (pp = {}) is not supported yet; use pp = 1", m.pp));
  if (m.replicas > 1)
    why.push_back(fmt::format("replicas = {} is not supported yet (one serve per model); use replicas = 1", m.replicas));
  return join(why, "; ");
}

std::string serve_log_file(const NodeConfig& head, const std::string& name) {
  return remote_path(head.state_dir) + "/logs/" + shell_quote("serve-" + name + ".log");
}

std::string serve_command(const ClusterConfig& c, const NodeConfig& head, const ModelConfig& m, int port,
                          const std::string& head_address) {
  std::string out;
  if (!c.env.empty()) {
    out = "env";
    for (const auto& [k, v] : c.env) out += " " + shell_quote(k + "=" + v);
    out += " ";
  }
  out += llmctl_command(head) +
         fmt::format(" serve --model {} --served-model-name {} --tp {} --address {} --host 0.0.0.0 --port {}{} "
                     "--max-model-len {} --gpu-memory-utilization {} --device auto",
                     shell_quote(m.path), shell_quote(m.name), m.tp, shell_quote(head_address), port,
                     // Left out, serve picks the batch limit for the GPU it lands on.
                     m.max_num_seqs > 0 ? fmt::format(" --max-num-seqs {}", m.max_num_seqs) : std::string(),
                     m.max_model_len, m.gpu_memory_utilization);
  if (m.load_format != "auto") out += " --load-format " + shell_quote(m.load_format);
  // Ranks on other nodes: a rank that dies is placed again.
  if (m.tp > 1) out += " --restart";
  return out;
}

std::vector<ModelPlan> plan_models(const ClusterConfig& c, const NodeConfig& head, const std::string& head_address,
                                   const HostFacts& facts, const std::string& bundle_sha256, bool nodes_restarted) {
  std::vector<ModelPlan> plans;
  std::set<std::string> listed;
  for (std::size_t i = 0; i < c.models.size(); ++i) {
    ModelPlan p;
    p.model = c.models[i];
    p.port = c.ports.api + static_cast<int>(i);
    listed.insert(p.model.name);
    auto it = facts.served.find(p.model.name);
    p.pid = it == facts.served.end() ? 0 : it->second.pid;
    p.reason = unsupported_reason(p.model);
    if (!p.reason.empty()) {
      p.action = "refuse";
      plans.push_back(std::move(p));
      continue;
    }
    p.command = serve_command(c, head, p.model, p.port, head_address);
    if (p.pid == 0) {
      p.action = "start";
      if (it != facts.served.end()) p.reason = "its serve had exited";
    } else if (it->second.command != p.command) {
      p.action = "restart";
      p.reason = "its settings in the file changed";
    } else if (!it->second.exe_sha256.empty() && it->second.exe_sha256 != bundle_sha256) {
      p.action = "restart";
      p.reason = "it runs another llmctl than this one";
    } else if (p.model.tp > 1 && nodes_restarted) {
      p.action = "restart";
      p.reason = "nodes its ranks may run on were restarted";
    } else {
      p.action = "running";
    }
    plans.push_back(std::move(p));
  }
  for (const auto& [name, served] : facts.served) {
    if (listed.count(name)) continue;
    ModelPlan p;
    p.model.name = name;
    p.pid = served.pid;
    p.action = "stop";
    p.reason = "no longer in the file";
    plans.push_back(std::move(p));
  }
  return plans;
}

std::string stop_serve_script(const NodeConfig& head, const std::vector<std::string>& names, int grace_s) {
  std::string list;
  if (names.empty()) {
    list = "$(for f in " + serve_dir(head) + "/*.pid; do [ -f \"$f\" ] && basename \"$f\" .pid; done)";
  } else {
    for (const auto& n : names) list += (list.empty() ? "" : " ") + shell_quote(n);
  }
  std::string alive = serve_alive_test();
  return fmt::format(
      "for n in {0}; do p=$(cat {1}/\"$n\".pid 2>/dev/null); "
      "if {2}; then kill -TERM \"$p\" 2>/dev/null; i=0; while {2} && [ $i -lt {3} ]; do sleep 0.1; i=$((i+1)); done; "
      "if {2}; then kill -KILL \"$p\" 2>/dev/null; echo \"killed $n $p\"; else echo \"stopped $n $p\"; fi; fi; "
      "rm -f {1}/\"$n\".pid {1}/\"$n\".cmd; done; true",
      list, serve_dir(head), alive, grace_s * 10);
}

std::vector<ModelOutcome> apply_model_plans(SshSession& session, const NodeConfig& head, const std::string& head_ip,
                                            std::vector<ModelPlan>& plans,
                                            std::chrono::steady_clock::time_point deadline, const PrintLine& print,
                                            std::vector<std::string>& errors) {
  std::vector<ModelOutcome> out(plans.size());
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const ModelPlan& p = plans[i];
    index[p.model.name] = i;
    out[i].name = p.model.name;
    out[i].port = p.port;
    out[i].tp = p.model.tp;
    out[i].reason = p.reason;
    out[i].pid = p.pid;
    if (p.port) out[i].url = fmt::format("http://{}:{}/v1", head_ip, p.port);
    out[i].log_file = head.state_dir + "/logs/serve-" + p.model.name + ".log";
    out[i].action = p.action == "running" ? "running" : p.action == "refuse" ? "refused" : p.action;
  }
  auto fail = [&](const std::string& name, const std::string& why) {
    errors.push_back(fmt::format("{}: model {}: {}", head.host, name, why));
    if (auto it = index.find(name); it != index.end()) out[it->second].action = "failed";
  };

  // 1. Stop what goes or changes (a refused model that still runs goes too).
  std::vector<std::string> to_stop;
  for (const auto& p : plans)
    if (p.action == "stop" || p.action == "restart" || (p.action == "refuse" && p.pid != 0))
      to_stop.push_back(p.model.name);
  if (!to_stop.empty()) {
    auto r = session.run_plain(stop_serve_script(head, to_stop, 15), 60);
    if (!r.is_ok() || r->exit_code != 0) {
      std::string why = !r.is_ok() ? r.status().message() : command_failure(*r);
      for (const auto& n : to_stop) fail(n, "stopping its serve: " + why);
      return out;
    }
    std::istringstream lines(r->stdout_text);
    std::string how, name;
    long pid = 0;
    while (lines >> how >> name >> pid) {
      print(fmt::format("{}: model {}: {} its serve (pid {}{})", head.host, name, how == "killed" ? "killed" : "stopped",
                        pid, how == "killed" ? ", it outlived SIGTERM by 15 s" : ""));
      if (auto it = index.find(name); it != index.end() && plans[it->second].action == "stop")
        out[it->second].action = "stopped";
      else if (it != index.end() && plans[it->second].action == "refuse")
        out[it->second].action = "refused (its serve was stopped)";
    }
  }

  // 2. Start the new and changed ones.
  std::vector<const ModelPlan*> pending;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    ModelPlan& p = plans[i];
    if (p.action == "running") pending.push_back(&p);
    if (p.action != "start" && p.action != "restart") continue;
    print(fmt::format("{}: model {}: {} `llmctl serve` (tp {}) on port {}{}", head.host, p.model.name,
                      p.action == "start" ? "starting" : "restarting", p.model.tp, p.port,
                      p.reason.empty() ? "" : " (" + p.reason + ")"));
    auto r = session.run_plain(start_script(head, p), 30);
    if (!r.is_ok() || r->exit_code != 0) {
      fail(p.model.name, "starting its serve: " + (!r.is_ok() ? r.status().message() : command_failure(*r)));
      continue;
    }
    auto at = r->stdout_text.find("pid=");
    out[i].pid = at == std::string::npos ? 0 : static_cast<pid_t>(std::atol(r->stdout_text.c_str() + at + 4));
    out[i].action = p.action == "start" ? "started" : "restarted";
    pending.push_back(&p);
  }

  // 3. Until each answers /health with 200, exits, or the deadline passes.
  std::map<std::string, std::string> last_health;
  while (!pending.empty()) {
    auto r = session.run_plain(poll_script(head, pending), 30);
    if (r.is_ok() && r->exit_code == 0) {
      std::map<std::string, std::vector<std::string>> logs;
      std::set<std::string> ready, exited;
      std::istringstream lines(r->stdout_text);
      std::string line;
      while (std::getline(lines, line)) {
        std::istringstream cols(line);
        std::string kind, name;
        cols >> kind >> name;
        std::string rest;
        std::getline(cols, rest);
        if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
        if (kind == "health") {
          last_health[name] = rest.empty() ? "no answer" : rest;
          if (rest == "200") ready.insert(name);
        } else if (kind == "exited") {
          exited.insert(name);
        } else if (kind == "log") {
          logs[name].push_back(rest);
        }
      }
      std::vector<const ModelPlan*> still;
      for (const ModelPlan* p : pending) {
        const std::string& n = p->model.name;
        if (ready.count(n)) {
          print(fmt::format("{}: model {}: /health answers 200 on port {}", head.host, n, p->port));
        } else if (exited.count(n)) {
          fail(n, fmt::format("llmctl serve exited; its log {} ends: {}", out[index[n]].log_file,
                              logs[n].empty() ? "(empty)" : join(logs[n], " | ")));
        } else {
          still.push_back(p);
        }
      }
      pending = std::move(still);
    } else {
      std::string why = !r.is_ok() ? r.status().message() : command_failure(*r);
      for (const ModelPlan* p : pending) last_health[p->model.name] = "the check failed: " + why;
    }
    if (pending.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (const ModelPlan* p : pending) {
        const std::string& h = last_health[p->model.name];
        fail(p->model.name, fmt::format("/health did not answer 200 in time (--timeout; last: {}); see its log {}",
                                        h == "0" || h.empty() ? "no answer" : h, out[index[p->model.name]].log_file));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // Files of a serve that had exited, removed above: nothing to report.
  std::vector<ModelOutcome> shown;
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (plans[i].action != "stop" || plans[i].pid != 0) shown.push_back(std::move(out[i]));
  return shown;
}

int http_status(const std::string& host, int port, const std::string& path, double timeout_s) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list) != 0 || !list) return 0;
  int fd = ::socket(list->ai_family, list->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int timeout_ms = static_cast<int>(timeout_s * 1000);
  bool connected = false;
  if (fd >= 0) {
    if (::connect(fd, list->ai_addr, list->ai_addrlen) == 0) {
      connected = true;
    } else if (errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      connected = ::poll(&pfd, 1, timeout_ms) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::freeaddrinfo(list);
  if (!connected) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  std::string request = fmt::format("GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n", path, host, port);
  std::string reply;
  std::size_t sent = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (reply.find("\r\n") == std::string::npos) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    until - std::chrono::steady_clock::now()).count());
    if (left <= 0) break;
    pollfd pfd{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&pfd, 1, left) != 1) break;
    if (sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    } else {
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  // "HTTP/1.1 200 OK"
  if (reply.rfind("HTTP/1.", 0) != 0 || reply.size() < 12) return 0;
  return std::atoi(reply.c_str() + 9);
}

}  // namespace llmctl::remote
