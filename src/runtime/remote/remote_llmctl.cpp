#include "runtime/remote/remote_llmctl.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>

#include <fmt/format.h>

namespace llmctl::remote {
namespace {

std::string first_line(const std::string& text) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

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

std::string format_mib(std::uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

SshOptions ssh_options_for(const NodeConfig& node, const std::string& known_hosts_file, bool accept_new_host_keys,
                           double connect_timeout_s) {
  SshOptions s;
  s.host = node.host;
  s.port = node.ssh.port;
  s.user = node.ssh.user;
  s.key_file = node.ssh.key;
  s.known_hosts_file = known_hosts_file;
  s.accept_new_host_keys = accept_new_host_keys;
  s.connect_timeout_s = connect_timeout_s;
  return s;
}

std::string remote_binary(const NodeConfig& node) { return remote_path(node.install_dir) + "/llmctl"; }

std::string llmctl_command(const NodeConfig& node) {
  return remote_binary(node) + " --state-dir " + remote_path(node.state_dir);
}

std::string with_token_and_env(const std::map<std::string, std::string>& env, const std::string& command) {
  std::string out = "read -r LLMCTL_TOKEN && export LLMCTL_TOKEN && exec ";
  if (!env.empty()) out += "env ";
  for (const auto& [k, v] : env) out += fmt::format("{} ", shell_quote(k + "=" + v));
  return out + command;
}

std::string command_failure(const CommandResult& r) {
  std::string why = first_line(r.stderr_text.empty() ? r.stdout_text : r.stderr_text);
  return fmt::format("exit status {}{}{}", r.exit_code, why.empty() ? "" : ": ", why);
}

std::vector<const BundleFile*> files_to_upload(const HostFacts& facts, const Bundle& bundle) {
  std::vector<const BundleFile*> out;
  for (const auto& f : bundle.files) {
    auto it = facts.sha256.find(f.relative_path);
    if (it == facts.sha256.end() || it->second != f.sha256) out.push_back(&f);
  }
  return out;
}

Status upload_bundle(SshSession& session, const NodeConfig& node, const std::vector<const BundleFile*>& files,
                     const PrintLine& print) {
  std::string inst = remote_path(node.install_dir);
  for (const BundleFile* f : files) {
    std::string dest = inst + "/" + shell_quote(f->relative_path);
    std::string command = fmt::format("mkdir -p {0}/lib && cat > {1}.upload && chmod {2} {1}.upload && "
                                      "mv -f {1}.upload {1} && sha256sum {1}",
                                      inst, dest, f->executable ? "755" : "644");
    print(fmt::format("{}: uploading {} ({})", node.host, f->relative_path, format_mib(f->size)));
    int shown = 0;
    auto r = session.run_with_file(
        command, f->local_path,
        [&](std::uint64_t sent, std::uint64_t total) {
          int quarter = total ? static_cast<int>(sent * 4 / total) : 4;
          if (quarter > shown && quarter < 4) print(fmt::format("{}: {} {}%", node.host, f->relative_path, quarter * 25));
          shown = std::max(shown, quarter);
        },
        120);
    if (!r.is_ok()) return r.status().with_context(fmt::format("uploading {}", f->relative_path));
    if (r->exit_code != 0)
      return Status::io_error(fmt::format("{}: uploading {} to {}: {}", session.target(), f->relative_path,
                                          node.install_dir, command_failure(*r)));
    if (r->stdout_text.rfind(f->sha256, 0) != 0)
      return Status::io_error(fmt::format("{}: {} arrived with another SHA-256 ({}) than sent ({})", session.target(),
                                          f->relative_path, r->stdout_text.substr(0, 64), f->sha256));
    print(fmt::format("{}: {} uploaded, SHA-256 checked", node.host, f->relative_path));
  }
  return Status::ok();
}

}  // namespace llmctl::remote
