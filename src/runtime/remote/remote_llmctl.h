// llmctl on a cluster host, as `up`, `down` and `doctor cluster.toml` drive it
// over SSH: where the binary is, how a command of it is spelled (token on
// stdin, [env] exported), and how the bundle gets there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "config/cluster_config.h"
#include "runtime/remote/bundle.h"
#include "runtime/remote/host_probe.h"
#include "runtime/remote/ssh_session.h"

namespace llmctl::remote {

// Runs fn(i) for every index on its own thread and waits for all.
template <typename Fn>
void for_each_parallel(std::size_t n, Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (std::size_t i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto& t : threads) t.join();
}

// `host`'s IPv4 address as this machine resolves it: what a node is told to
// advertise and how the others reach it when the file gives no node_ip.
Result<std::string> resolve_ipv4(const std::string& host);

SshOptions ssh_options_for(const NodeConfig& node, const std::string& known_hosts_file, bool accept_new_host_keys,
                           double connect_timeout_s);

// <install_dir>/llmctl, quoted for the remote shell.
std::string remote_binary(const NodeConfig& node);

// The remote binary with the node's --state-dir.
std::string llmctl_command(const NodeConfig& node);

// `command` behind a `read` of the token from stdin (it never shows in a
// process list on the host) and the file's [env].
std::string with_token_and_env(const std::map<std::string, std::string>& env, const std::string& command);

// "34.6 MiB", for progress lines and the plan.
std::string format_mib(std::uint64_t bytes);

// "exit status N: first line of stderr (else stdout)".
std::string command_failure(const CommandResult& result);

// The bundle files whose SHA-256 on the host differs (or that are missing).
std::vector<const BundleFile*> files_to_upload(const HostFacts& facts, const Bundle& bundle);

// Streams `files` into the node's install dir (written beside, renamed over,
// then checked with sha256sum there); progress lines go to `print`.
using PrintLine = std::function<void(const std::string& line)>;
Status upload_bundle(SshSession& session, const NodeConfig& node, const std::vector<const BundleFile*>& files,
                     const PrintLine& print);

}  // namespace llmctl::remote
