// What the local probes check against: the cluster's ports and settings, this
// node's advertised address and its peers. Built by the CLI from flags and
// cluster.toml; defaults match the SPEC's defaults.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/cluster_config.h"

namespace llmctl::netcheck {

struct ProbeOptions {
  std::string node_name;                    // how this node is named in results
  PortsConfig ports;
  std::string bind_address = "0.0.0.0";     // where the cluster's services will listen
  std::string node_ip;                      // the address this node advertises; empty: unknown
  std::vector<std::string> peers;           // names or addresses of the other nodes
  std::map<std::string, std::string> env;   // cluster.toml [env]; the process environment wins
  std::string state_dir;
  std::vector<std::string> model_dirs;      // --model and the config's model paths
};

}  // namespace llmctl::netcheck
