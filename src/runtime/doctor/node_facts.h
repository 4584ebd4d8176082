// NodeFacts: what a node says about itself to the checking node (doctor.info):
// its name, the address it advertises, its versions and its clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "netcheck/host_view.h"

namespace llmctl::doctor {

struct NodeFacts {
  std::string hostname;
  std::string address;          // the address this node advertises
  std::string llmctl_version;
  std::string driver_version;   // empty: no NVIDIA driver
  std::string cuda_version;     // "13.0"; empty: no driver
  std::string nccl_version;     // empty: no libnccl
  std::int64_t time_unix_ms = 0;
  std::vector<int> listening_ports;  // ports the doctor listener holds (listen mode)

  nlohmann::json to_json() const;
  static NodeFacts from_json(const nlohmann::json& j);
};

// The address a node advertises: `node_ip` when given; else what its hostname
// resolves to if that is an address of an up, non-loopback interface; else the
// first IPv4 address of such an interface (what NCCL would use by default).
std::string advertised_address(const netcheck::HostView& host, const std::string& node_ip);

// `version_override` replaces llmctl's version (LLMCTL_FAKE_VERSION in listen
// mode, for tests of the version check).
NodeFacts collect_node_facts(const netcheck::HostView& host, const std::string& node_ip,
                             const std::string& version_override);

std::int64_t unix_time_ms();

}  // namespace llmctl::doctor
