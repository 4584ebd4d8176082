#include "runtime/doctor/port_prober.h"

#include <map>
#include <memory>

#include <asio.hpp>
#include <fmt/format.h>

namespace llmctl::doctor {
namespace {

ProbeOutcome classify(const asio::error_code& ec) {
  if (!ec) return ProbeOutcome::kOk;
  if (ec == asio::error::connection_refused) return ProbeOutcome::kRefused;
  if (ec == asio::error::timed_out || ec == asio::error::operation_aborted) return ProbeOutcome::kTimeout;
  if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable) return ProbeOutcome::kUnreachable;
  if (ec == asio::error::connection_reset) return ProbeOutcome::kReset;
  return ProbeOutcome::kError;
}

// One connect attempt with its timer; both live until the attempt completes.
struct Attempt {
  Attempt(asio::io_context& io) : socket(io), timer(io) {}
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  std::chrono::steady_clock::time_point start;
  bool timed_out = false;
};

}  // namespace

std::string_view probe_outcome_name(ProbeOutcome outcome) {
  switch (outcome) {
    case ProbeOutcome::kOk: return "ok";
    case ProbeOutcome::kRefused: return "refused";
    case ProbeOutcome::kTimeout: return "timeout";
    case ProbeOutcome::kUnreachable: return "unreachable";
    case ProbeOutcome::kReset: return "reset";
    case ProbeOutcome::kError: return "error";
  }
  return "error";
}

ProbeOutcome parse_probe_outcome(std::string_view name) {
  for (auto o : {ProbeOutcome::kOk, ProbeOutcome::kRefused, ProbeOutcome::kTimeout, ProbeOutcome::kUnreachable,
                 ProbeOutcome::kReset}) {
    if (probe_outcome_name(o) == name) return o;
  }
  return ProbeOutcome::kError;
}

std::vector<PortProbe> probe_ports(const std::string& address, const std::vector<int>& ports,
                                   const PortProberOptions& options) {
  std::vector<PortProbe> results(ports.size());
  asio::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) {
    for (std::size_t i = 0; i < ports.size(); ++i) {
      results[i] = PortProbe{ports[i], ProbeOutcome::kError, 0, fmt::format("{} is not an address", address)};
    }
    return results;
  }
  asio::io_context io;
  std::size_t next = 0;
  int in_flight = 0;
  // Starts attempts until max_concurrent are in flight; each completion starts the next.
  std::function<void()> launch = [&] {
    while (in_flight < options.max_concurrent && next < ports.size()) {
      std::size_t i = next++;
      ++in_flight;
      auto a = std::make_shared<Attempt>(io);
      a->start = std::chrono::steady_clock::now();
      a->timer.expires_after(options.timeout);
      a->timer.async_wait([a](asio::error_code e) {
        if (e) return;
        a->timed_out = true;
        asio::error_code ignored;
        a->socket.close(ignored);
      });
      asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(ports[i]));
      a->socket.async_connect(ep, [&, a, i](asio::error_code e) {
        a->timer.cancel();
        PortProbe& r = results[i];
        r.port = ports[i];
        r.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a->start).count();
        r.outcome = a->timed_out ? ProbeOutcome::kTimeout : classify(e);
        if (r.outcome != ProbeOutcome::kOk) r.detail = a->timed_out ? "no answer" : e.message();
        asio::error_code ignored;
        a->socket.close(ignored);
        --in_flight;
        launch();
      });
    }
  };
  launch();
  io.run();
  return results;
}

std::string summarize_probes(const std::vector<PortProbe>& probes) {
  int ok = 0;
  double max_ms = 0;
  std::map<std::string, int> failures;
  for (const auto& p : probes) {
    if (p.outcome == ProbeOutcome::kOk) {
      ++ok;
      max_ms = std::max(max_ms, p.elapsed_ms);
    } else {
      ++failures[std::string(probe_outcome_name(p.outcome))];
    }
  }
  std::string out = fmt::format("{} of {} ports reachable", ok, probes.size());
  if (ok > 0) out += fmt::format(" (slowest {:.1f} ms)", max_ms);
  std::string failed;
  for (const auto& [name, count] : failures) failed += fmt::format("{}{} {}", failed.empty() ? "" : ", ", count, name);
  if (!failed.empty()) out += "; " + failed;
  return out;
}

}  // namespace llmctl::doctor
