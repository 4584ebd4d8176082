// GPU indices: which of a node's GPUs a bundle holds, as Ray assigns them.
// The head picks the lowest indices of the node (0 .. its registered "GPU"
// total - 1) that no other granted bundle there holds; the agent turns them
// into the child's CUDA_VISIBLE_DEVICES, through its own when it has one
// (an agent started with CUDA_VISIBLE_DEVICES=2,3 gives index 1 as "3").
// Pure functions; no I/O.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace llmctl::control {

// The `requested` lowest indices below `num_gpus_total` not in `held`.
// INVALID_ARGUMENT for a fractional request (GPUs are not shared yet);
// UNAVAILABLE, naming what is held, when too few are free.
Result<std::vector<int>> pick_gpu_indices(double num_gpus_total, const std::set<int>& held, double requested);

// CUDA_VISIBLE_DEVICES for a child given `indices` of its node, where
// `inherited` is the agent's own CUDA_VISIBLE_DEVICES (nullopt: unset, so
// index i is device i). INVALID_ARGUMENT when an index is past what the
// agent's list names.
Result<std::string> cuda_visible_devices(const std::vector<int>& indices, const std::optional<std::string>& inherited);

// "0,1" (empty for none): how indices are shown and passed on.
std::string join_gpu_indices(const std::vector<int>& indices);

}  // namespace llmctl::control
