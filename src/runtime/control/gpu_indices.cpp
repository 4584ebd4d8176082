#include "runtime/control/gpu_indices.h"

#include <cmath>

#include <fmt/format.h>

namespace llmctl::control {

Result<std::vector<int>> pick_gpu_indices(double num_gpus_total, const std::set<int>& held, double requested) {
  if (requested <= 0) return std::vector<int>{};
  if (std::floor(requested) != requested) {
    return Status::invalid_argument(
        fmt::format("{:g} GPU: fractional GPUs are not supported yet; ask for whole GPUs", requested));
  }
  const int total = static_cast<int>(std::floor(num_gpus_total));
  const int want = static_cast<int>(requested);
  std::vector<int> out;
  for (int i = 0; i < total && static_cast<int>(out.size()) < want; ++i) {
    if (!held.count(i)) out.push_back(i);
  }
  if (static_cast<int>(out.size()) < want) {
    std::vector<int> taken(held.begin(), held.end());
    return Status::unavailable(fmt::format("{} GPU index(es) wanted, {} free of {} (held: {})", want, out.size(), total,
                                           taken.empty() ? "none" : join_gpu_indices(taken)));
  }
  return out;
}

Result<std::string> cuda_visible_devices(const std::vector<int>& indices, const std::optional<std::string>& inherited) {
  if (!inherited) return join_gpu_indices(indices);
  std::vector<std::string> listed;
  std::size_t start = 0;
  while (start <= inherited->size()) {
    std::size_t comma = inherited->find(',', start);
    if (comma == std::string::npos) comma = inherited->size();
    if (comma > start) listed.push_back(inherited->substr(start, comma - start));
    start = comma + 1;
  }
  std::vector<std::string> out;
  for (int i : indices) {
    if (i < 0 || static_cast<std::size_t>(i) >= listed.size()) {
      return Status::invalid_argument(fmt::format(
          "GPU index {} is past this agent's CUDA_VISIBLE_DEVICES=\"{}\" ({} device(s)); start the agent with "
          "--num-gpus no larger than the devices it sees",
          i, *inherited, listed.size()));
    }
    out.push_back(listed[static_cast<std::size_t>(i)]);
  }
  return fmt::format("{}", fmt::join(out, ","));
}

std::string join_gpu_indices(const std::vector<int>& indices) { return fmt::format("{}", fmt::join(indices, ",")); }

}  // namespace llmctl::control
