#include "runtime/remote/host_probe.h"

#include <sys/utsname.h>

#include <sstream>

#include <fmt/format.h>

#include "runtime/remote/ssh_session.h"

namespace llmctl::remote {

std::string remote_path(const std::string& path) {
  if (path == "~") return "\"$HOME\"";
  if (path.rfind("~/", 0) == 0) return "\"$HOME\"/" + shell_quote(path.substr(2));
  return shell_quote(path);
}

std::string serve_alive_test() {
  return "{ [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null && [ \"$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)\" != Z ] && "
         "tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q ' serve '; }";
}

std::string probe_command(const std::string& install_dir, const std::string& state_dir) {
  std::string inst = remote_path(install_dir), state = remote_path(state_dir);
  // Each line stands alone: a failing probe leaves its key out rather than
  // stopping the rest.
  return fmt::format(
      "printf 'uname=%s\\n' \"$(uname -sm)\"; printf 'home=%s\\n' \"$HOME\"; "
      "d={0}; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; "
      "printf 'disk_path=%s\\n' \"$d\"; printf 'df=%s\\n' \"$(df -Pk \"$d\" 2>/dev/null | tail -n 1)\"; "
      "for f in head agent; do p=$(cat {1}/$f.pid 2>/dev/null) && kill -0 \"$p\" 2>/dev/null && "
      "printf '%s_pid=%s\\n' $f \"$p\" && "
      // The running binary itself (the file may have been replaced since it started).
      "printf '%s_exe=%s\\n' $f \"$(sha256sum /proc/$p/exe 2>/dev/null | cut -d' ' -f1)\"; done; "
      "p=$(cat {1}/doctor/listen.pid 2>/dev/null) && kill -0 \"$p\" 2>/dev/null && printf 'doctor_pid=%s\\n' \"$p\"; "
      "[ -f {1}/cluster.json ] && printf 'cluster_json=%s\\n' \"$(tr -d '\\n' < {1}/cluster.json)\"; "
      "for f in {1}/serve/*.pid; do [ -f \"$f\" ] || continue; n=$(basename \"$f\" .pid); p=$(cat \"$f\" 2>/dev/null); "
      "if {2}; then printf 'serve=%s %s %s\\n' \"$n\" \"$p\" \"$(sha256sum /proc/$p/exe 2>/dev/null | cut -d' ' -f1)\"; "
      "else printf 'serve=%s 0 -\\n' \"$n\"; fi; "
      "[ -f {1}/serve/\"$n\".cmd ] && printf 'serve_cmd=%s %s\\n' \"$n\" \"$(head -n 1 {1}/serve/\"$n\".cmd)\"; done; "
      "(cd {0} 2>/dev/null && sha256sum llmctl lib/* 2>/dev/null) | sed 's/^/sha=/'; "
      "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == \"0A\" {{ print \"listen=\" $2 }}'; true",
      inst, state, serve_alive_test());
}

Result<HostFacts> parse_probe_output(const std::string& text) {
  HostFacts f;
  std::istringstream in(text);
  std::string line;
  bool saw_uname = false;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "uname") {
      f.os_arch = value;
      saw_uname = true;
    } else if (key == "home") {
      f.home = value;
    } else if (key == "disk_path") {
      f.disk_path = value;
    } else if (key == "df") {
      // "Filesystem 1024-blocks Used Available Capacity Mounted-on"
      std::istringstream cols(value);
      std::string fs_name;
      long long blocks = 0, used = 0, avail = -1;
      if (cols >> fs_name >> blocks >> used >> avail && avail >= 0) f.free_bytes = avail * 1024;
    } else if (key == "head_pid" || key == "agent_pid") {
      pid_t pid = static_cast<pid_t>(std::atol(value.c_str()));
      (key == "head_pid" ? f.head_pid : f.agent_pid) = pid;
    } else if (key == "doctor_pid") {
      f.doctor_pid = static_cast<pid_t>(std::atol(value.c_str()));
    } else if (key == "head_exe" || key == "agent_exe") {
      (key == "head_exe" ? f.head_exe_sha256 : f.agent_exe_sha256) = value;
    } else if (key == "cluster_json") {
      f.cluster_json = value;
    } else if (key == "sha") {
      // "HASH  relative/path"
      auto space = value.find("  ");
      if (space != std::string::npos) f.sha256[value.substr(space + 2)] = value.substr(0, space);
    } else if (key == "serve" || key == "serve_cmd") {
      // "NAME PID SHA" / "NAME COMMAND"
      auto space = value.find(' ');
      if (space == std::string::npos) continue;
      auto& m = f.served[value.substr(0, space)];
      std::string rest = value.substr(space + 1);
      if (key == "serve_cmd") {
        m.command = rest;
      } else {
        std::istringstream cols(rest);
        long pid = 0;
        std::string sha;
        cols >> pid >> sha;
        m.pid = static_cast<pid_t>(pid);
        m.exe_sha256 = sha == "-" ? "" : sha;
      }
    } else if (key == "listen") {
      // "0100007F:18EB": address:port in hex.
      auto colon = value.rfind(':');
      if (colon != std::string::npos) f.listening_ports.insert(static_cast<int>(std::strtol(value.c_str() + colon + 1, nullptr, 16)));
    }
  }
  if (!saw_uname) return Status::unavailable(fmt::format("the host's probe printed nothing usable: {}", text.substr(0, 200)));
  return f;
}

std::string local_os_arch() {
  utsname u{};
  if (::uname(&u) != 0) return "?";
  return fmt::format("{} {}", u.sysname, u.machine);
}

}  // namespace llmctl::remote
