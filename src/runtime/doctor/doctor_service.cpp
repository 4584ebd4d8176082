#include "runtime/doctor/doctor_service.h"

#include <algorithm>
#include <thread>

#include <asio.hpp>
#include <fmt/format.h>

#include "common/logging.h"
#include "common/open_file_limit.h"
#include "netcheck/probes/gpu_probe.h"
#include "netcheck/probes/hostname_probe.h"
#include "netcheck/probes/interfaces_probe.h"
#include "netcheck/probes/system_probe.h"
#include "runtime/doctor/doctor_protocol.h"
#include "runtime/doctor/model_manifest.h"
#include "runtime/doctor/node_facts.h"
#include "runtime/doctor/port_prober.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/server.h"

namespace llmctl::doctor {

using transport::Message;
using Json = nlohmann::json;

bool ListenSummary::has(int port) const {
  return std::find(bound_ports.begin(), bound_ports.end(), port) != bound_ports.end();
}

std::string generate_token() { return transport::random_hex(16); }

struct DoctorService::Impl {
  Impl(const DoctorServiceOptions& o, const netcheck::HostView& h)
      : options(o), host(h), work(asio::make_work_guard(io)), server(io, o.token) {}

  DoctorServiceOptions options;
  const netcheck::HostView& host;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  transport::Server server;
  ListenSummary summary;
  std::thread thread;
  bool stopped = false;

  void register_handlers();
};

void DoctorService::Impl::register_handlers() {
  server.on(kInfoRequest, [this](const Message&, const std::string&) -> Result<Json> {
    NodeFacts facts = collect_node_facts(host, options.probe.node_ip, options.version_override);
    facts.listening_ports = summary.bound_ports;
    return facts.to_json();
  });
  server.on(kResolveRequest, [this](const Message& m, const std::string&) -> Result<Json> {
    Json results = Json::object();
    auto names = m.body.find("names");
    if (names == m.body.end() || !names->is_array()) return Status::invalid_argument("doctor.resolve needs \"names\"");
    for (const auto& n : *names) {
      if (!n.is_string()) continue;
      auto addrs = host.resolve(n.get<std::string>());
      results[n.get<std::string>()] = addrs.is_ok() ? Json{{"addresses", *addrs}} : Json{{"error", addrs.status().message()}};
    }
    return Json{{"results", results}};
  });
  server.on(kConnectBackRequest, [](const Message& m, const std::string&) -> Result<Json> {
    std::string address = m.body.value("address", "");
    auto ports_it = m.body.find("ports");
    if (address.empty() || ports_it == m.body.end() || !ports_it->is_array() || ports_it->size() > 65536) {
      return Status::invalid_argument("doctor.connect_back needs \"address\" and at most 65536 \"ports\"");
    }
    std::vector<int> ports;
    for (const auto& p : *ports_it) {
      if (p.is_number_integer() && p.get<int>() > 0 && p.get<int>() < 65536) ports.push_back(p.get<int>());
    }
    PortProberOptions po;
    po.timeout = std::chrono::milliseconds(std::clamp(m.body.value("timeout_ms", 1000), 50, 10000));
    Json probes = Json::array();
    for (const auto& p : probe_ports(address, ports, po)) {
      probes.push_back({{"port", p.port},
                        {"outcome", std::string(probe_outcome_name(p.outcome))},
                        {"elapsed_ms", p.elapsed_ms},
                        {"detail", p.detail}});
    }
    return Json{{"probes", probes}};
  });
  server.on(kModelRequest, [](const Message& m, const std::string&) -> Result<Json> {
    auto manifest = build_model_manifest(m.body.value("path", ""), m.body.value("deep", false));
    if (!manifest.is_ok()) return manifest.status();
    return manifest->to_json();
  });
  server.on(kChecksRequest, [this](const Message& m, const std::string&) -> Result<Json> {
    netcheck::ProbeOptions po = options.probe;
    po.peers.clear();
    if (auto peers = m.body.find("peers"); peers != m.body.end() && peers->is_array()) {
      for (const auto& p : *peers) {
        if (p.is_string()) po.peers.push_back(p.get<std::string>());
      }
    }
    Json checks = Json::array();
    for (auto probe : {netcheck::probe_hostname, netcheck::probe_interfaces, netcheck::probe_system, netcheck::probe_gpu}) {
      for (const auto& r : probe(host, po)) {
        checks.push_back({{"id", r.id},
                          {"status", std::string(netcheck::check_status_name(r.status))},
                          {"message", r.message},
                          {"fix", r.fix}});
      }
    }
    return Json{{"checks", checks}};
  });
}

DoctorService::DoctorService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DoctorService::~DoctorService() { stop(); }

Result<std::unique_ptr<DoctorService>> DoctorService::start(const DoctorServiceOptions& options,
                                                            const netcheck::HostView& host) {
  // Listeners and probes of the node range need ~2,000 descriptors each; a
  // limit that cannot be raised shows up in the doctor's own limits check.
  (void)raise_open_file_limit();
  auto impl = std::make_unique<Impl>(options, host);
  impl->register_handlers();
  const PortsConfig& p = options.probe.ports;
  const std::string& address = options.probe.bind_address;
  for (int port : {p.head, p.dashboard, p.client, p.api}) {
    auto bound = impl->server.listen(address, static_cast<std::uint16_t>(port));
    if (bound.is_ok()) {
      impl->summary.bound_ports.push_back(port);
    } else {
      impl->summary.failures.push_back(fmt::format("{}: {}", port, bound.status().message()));
    }
  }
  impl->summary.range_total = p.node_range.size();
  for (int port = p.node_range.first; port <= p.node_range.last; ++port) {
    if (impl->summary.has(port)) continue;
    if (impl->server.listen(address, static_cast<std::uint16_t>(port)).is_ok()) {
      impl->summary.bound_ports.push_back(port);
      ++impl->summary.range_bound;
    }
  }
  if (impl->summary.bound_ports.empty()) {
    return Status::unavailable(fmt::format("could not listen on any cluster port on {}", address));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  logger("doctor")->info("listening on {} ports ({} of {} in the node range)", impl->summary.bound_ports.size(),
                         impl->summary.range_bound, impl->summary.range_total);
  return std::unique_ptr<DoctorService>(new DoctorService(std::move(impl)));
}

const ListenSummary& DoctorService::summary() const { return impl_->summary; }

int DoctorService::num_auth_failures() const { return impl_->server.num_auth_failures(); }

void DoctorService::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace llmctl::doctor
