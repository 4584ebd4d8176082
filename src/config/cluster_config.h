// cluster.toml as users write it (../shared/SPEC.md), as plain structs.
// Parsed once by load_cluster_config(); every key except head.host has a
// default, and every error names the file, line, column and key.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace llmctl {

struct PortRange {
  int first = 30000;
  int last = 32000;  // inclusive
  int size() const { return last - first + 1; }
  bool contains(int port) const { return port >= first && port <= last; }
};

struct PortsConfig {
  int head = 6379;        // control plane (Ray's GCS port)
  int dashboard = 8265;
  int client = 10001;
  int api = 8000;         // OpenAI API of the cluster's entry
  PortRange node_range;   // node-to-node: engine ranks, NCCL/Gloo bootstrap, probes
};

struct SshConfig {
  std::string user = "root";
  std::string key;        // empty: ~/.ssh/id_ed25519 when present, else the ssh-agent
  int port = 22;
};

struct NodeConfig {
  std::string host;                       // where to ssh
  std::string node_ip;                    // advertised address; empty: what host resolves to
  std::optional<int> num_gpus;            // empty: detected
  std::optional<int> num_cpus;            // empty: detected
  std::map<std::string, double> resources;  // custom resources, e.g. {"node:lf001": 1}
  SshConfig ssh;                          // [ssh] with this node's `ssh = {...}` applied
  std::string state_dir = "/var/lib/llmctl";
  std::string install_dir = "~/.llmctl/bin";
};

struct ModelConfig {
  std::string name;
  std::string path;
  int tp = 1;
  int pp = 1;
  int replicas = 1;
  double gpu_memory_utilization = 0.9;
  // 0 (left out): serve's device default (engine/scheduler_limits.h:
  // 1,024 on a GPU of 70 GiB or more, 256 on a smaller one, 64 on the CPU).
  int max_num_seqs = 0;
  int max_model_len = 4096;
  // serve's --load-format: "auto" (the folder's safetensors) or "dummy"
  // (seeded random weights of its config.json, for benchmarks). An
  // extension of SPEC.md's [[models]] table.
  std::string load_format = "auto";
};

struct ClusterConfig {
  std::string source_path;                // the file it came from (for messages)
  std::string name;                       // [cluster] name; default: file name stem
  PortsConfig ports;
  SshConfig ssh;                          // defaults for every host
  std::map<std::string, std::string> env; // exported to every process on every node
  NodeConfig head;
  std::vector<NodeConfig> workers;
  std::vector<ModelConfig> models;

  // Head first, then workers in file order.
  std::vector<const NodeConfig*> nodes() const;
};

// Parses TOML text; `source_name` is used in messages ("cluster.toml:3:5: ...").
// Syntax errors, unknown keys, wrong types and invalid values are all errors.
Result<ClusterConfig> parse_cluster_config(std::string_view text, std::string_view source_name);

// Reads and parses a file.
Result<ClusterConfig> load_cluster_config(const std::string& path);

// Checks values that are each well-typed but wrong together (duplicate ports,
// a worker listed twice, tp larger than the cluster's GPUs). parse_cluster_config
// already calls it; exposed for configs built in code.
Status validate(const ClusterConfig& config);

// The effective configuration, defaults filled in, as TOML (`llmctl config show`).
std::string to_toml(const ClusterConfig& config);

// Parses "30000-32000".
Result<PortRange> parse_port_range(std::string_view text);

}  // namespace llmctl
