// The text and JSON of `llmctl version` / `llmctl --version`.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace llmctl::cli {

// Build facts plus, when probe_gpus, the driver and GPUs found at run time.
std::string version_text(bool probe_gpus);
nlohmann::json version_json(bool probe_gpus);

}  // namespace llmctl::cli
