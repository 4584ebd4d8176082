#include "runtime/placement/resource_set.h"

#include <fmt/format.h>

namespace llmctl::placement {
namespace {
// Tolerance for fractional requests (0.1 + 0.2 style sums).
constexpr double kEpsilon = 1e-9;
}  // namespace

bool fits(const ResourceSet& request, const ResourceSet& available) {
  for (const auto& [name, amount] : request) {
    if (amount <= 0) continue;
    auto it = available.find(name);
    double have = it == available.end() ? 0.0 : it->second;
    if (have + kEpsilon < amount) return false;
  }
  return true;
}

void add_to(ResourceSet& total, const ResourceSet& delta) {
  for (const auto& [name, amount] : delta) total[name] += amount;
}

void subtract_from(ResourceSet& total, const ResourceSet& delta) {
  for (const auto& [name, amount] : delta) {
    double& v = total[name];
    v = v - amount < kEpsilon ? 0.0 : v - amount;
  }
}

std::string format_resources(const ResourceSet& resources) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, amount] : resources) {
    if (!first) out += ", ";
    first = false;
    if (name == "memory") {
      out += fmt::format("memory: {:.1f}GiB", amount / (1024.0 * 1024 * 1024));
    } else {
      out += fmt::format("{}: {:g}", name, amount);
    }
  }
  return out + "}";
}

Result<ResourceSet> resources_from_json(const nlohmann::json& j) {
  if (j.is_null()) return ResourceSet{};
  if (!j.is_object()) return Status::invalid_argument("resources must be a JSON object of numbers");
  ResourceSet out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number() || it->get<double>() < 0) {
      return Status::invalid_argument(fmt::format("resource \"{}\" must be a non-negative number", it.key()));
    }
    if (it.key().empty()) return Status::invalid_argument("resource names must not be empty");
    out[it.key()] = it->get<double>();
  }
  return out;
}

nlohmann::json resources_to_json(const ResourceSet& resources) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, amount] : resources) j[name] = amount;
  return j;
}

}  // namespace llmctl::placement
