// DoctorService: the listening side of `llmctl doctor --listen` (and of the
// checking node, so peers can connect back to it). It binds every cluster port
// and as much of the node range as it can; every listener accepts connections
// and answers authenticated doctor requests (doctor_protocol.h); a bare
// connect-and-close is simply a reachability probe.
//
// Owns one io_context thread and the transport Server's handler pool.
// Handlers read the HostView concurrently; it must outlive the service.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "netcheck/host_view.h"
#include "netcheck/probe_options.h"

namespace llmctl::doctor {

struct DoctorServiceOptions {
  netcheck::ProbeOptions probe;   // ports, bind address, node_ip, env, state dir
  std::string token;
  std::string version_override;   // reported instead of llmctl's version (tests only)
};

struct ListenSummary {
  std::vector<int> bound_ports;          // every port a listener holds
  std::vector<std::string> failures;     // "6379: Address already in use" for named ports
  int range_bound = 0;
  int range_total = 0;
  bool has(int port) const;
};

class DoctorService {
 public:
  // Fails only when no listener at all could be opened.
  static Result<std::unique_ptr<DoctorService>> start(const DoctorServiceOptions& options,
                                                      const netcheck::HostView& host);
  ~DoctorService();
  DoctorService(const DoctorService&) = delete;
  DoctorService& operator=(const DoctorService&) = delete;

  const ListenSummary& summary() const;
  int num_auth_failures() const;
  void stop();

 private:
  struct Impl;
  explicit DoctorService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A fresh random token (32 hex digits) for a listener started without --token.
std::string generate_token();

}  // namespace llmctl::doctor
