// Cluster-wide log search (issue #11). The CLI sends `logs.search {query}` to
// the head; the head relays it to the agent of every selected node over the
// agents' existing channels and merges the answers by time. Each agent
// searches its own state dir (runtime/logs) on a worker thread, so heartbeats
// never wait behind a grep. A node that cannot answer (Dead, disconnected,
// too slow) is reported by name in the reply, never silently skipped.
//
// Reply: {records: [...], truncated: bool,
//         nodes: [{name, node_id, ok, error, bytes_scanned, num_records}]}
// Records travel in a compact form (runtime/logs' JSON without the derived
// fields) and each reply stays under a frame (max_reply_bytes).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/logs/log_search.h"
#include "runtime/transport/channel.h"

namespace llmctl::control {

struct LogTarget {
  std::string node_id, name, address;
  bool active = false;
  std::string reason;                            // why not active
  std::shared_ptr<transport::Channel> channel;   // null: no agent connected
};

// Head side: answers request `id` on `client` once every target has answered
// or `timeout` passed. Runs on the head's io_context.
void relay_log_search(const std::shared_ptr<transport::Channel>& client, std::uint64_t id, const nlohmann::json& body,
                      std::vector<LogTarget> targets, std::chrono::milliseconds timeout, std::size_t max_reply_bytes);

// Agent side: searches `state_dir` on a worker thread and replies to request
// `id` from the io_context. At most a few searches run at once; more are refused.
void answer_log_search(asio::io_context& io, const std::shared_ptr<transport::Channel>& channel, std::uint64_t id,
                       const nlohmann::json& body, std::string state_dir, std::string node_name,
                       std::size_t max_reply_bytes);

// The compact wire form of records, oldest first, cut where the JSON would
// exceed max_bytes (then `truncated` is set).
nlohmann::json records_to_wire(const std::vector<logs::LogRecord>& records, std::size_t max_bytes, bool& truncated);
Result<std::vector<logs::LogRecord>> records_from_wire(const nlohmann::json& j);

}  // namespace llmctl::control
