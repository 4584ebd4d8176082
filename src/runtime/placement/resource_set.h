// ResourceSet: named quantities a node offers or a bundle asks for, like Ray's
// resource dicts: {"CPU": 8, "GPU": 1, "memory": 6.4e10, "node:lf001": 1}.
// Quantities are non-negative doubles (fractional GPUs are allowed); a name
// that is absent counts as zero.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::placement {

using ResourceSet = std::map<std::string, double>;

// True when `available` has at least every quantity in `request`.
bool fits(const ResourceSet& request, const ResourceSet& available);
void add_to(ResourceSet& total, const ResourceSet& delta);
// Subtracts, clamping at zero so rounding never leaves a negative amount.
void subtract_from(ResourceSet& total, const ResourceSet& delta);
// "{GPU: 1, CPU: 2}", memory shown in GiB.
std::string format_resources(const ResourceSet& resources);

// From a JSON object of numbers; names the bad key on failure.
Result<ResourceSet> resources_from_json(const nlohmann::json& j);
nlohmann::json resources_to_json(const ResourceSet& resources);

}  // namespace llmctl::placement
