// Human-readable views of the head's cluster.status reply (head.h):
// `llmctl status` (like `ray status`) and `llmctl nodes` (like `ray list nodes`).
// Pure formatting, so tests feed it JSON and compare text.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace llmctl::control {

std::string format_status(const nlohmann::json& status);
std::string format_nodes(const nlohmann::json& status);
// The `nodes --json` document: one object per node.
nlohmann::json nodes_json(const nlohmann::json& status);

}  // namespace llmctl::control
