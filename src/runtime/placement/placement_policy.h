// Which node gets each bundle of a placement request, like Ray placement
// groups. Pure logic over a snapshot of node resources: no I/O, no clock, so
// every strategy is unit tested with plain structs.
//
//   PACK          as few nodes as possible (one if it fits), else spill over
//   SPREAD        distinct nodes where possible, else reuse the emptiest
//   STRICT_PACK   all bundles on one node, or not at all
//   STRICT_SPREAD every bundle on a different node, or not at all
//
// A request either fits entirely (all bundles granted at once) or not at all:
// partial grants would deadlock two engines each holding half their GPUs.
//
// A bundle may be pinned to one node (by node id or name): it goes there or
// the request waits, and the strategy places the other bundles around it
// (PACK next to it, SPREAD away from it, STRICT_PACK all on it, STRICT_SPREAD
// never beside another pinned one). `serve` pins rank 0's GPU to its own node.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/placement/resource_set.h"

namespace llmctl::placement {

enum class Strategy { kPack, kSpread, kStrictPack, kStrictSpread };

std::string_view strategy_name(Strategy strategy);
// Accepts PACK, SPREAD, STRICT_PACK, STRICT_SPREAD (any case).
Result<Strategy> parse_strategy(std::string_view name);

struct NodeCapacity {
  std::string node_id;
  ResourceSet total;      // what the node offers
  ResourceSet available;  // total minus granted bundles
  std::string name;       // a pin may name the node by this instead of its id
};

struct PlacementDecision {
  bool placed = false;
  std::vector<std::string> node_ids;  // one per bundle when placed
  std::string reason;                 // why not, when !placed
  bool infeasible = false;            // cannot fit even on an empty cluster
};

// Only alive nodes should be passed. Ties are broken by node id order, so the
// same snapshot always gives the same answer. `pins` is empty or has one entry
// per bundle: "" places it anywhere, else the node id or name it must go to.
// A pin to a node not in `nodes` waits (the node may join) with a reason
// naming it; a pin to a node that could never hold its bundles is infeasible.
PlacementDecision place(const std::vector<ResourceSet>& bundles, Strategy strategy,
                        std::vector<NodeCapacity> nodes, const std::vector<std::string>& pins = {});

// Re-places the bundles whose entry in `current` is empty (their node died),
// leaving the others where they are; `current` has one entry per bundle and
// `nodes` must already count the kept bundles as used. The strategy still
// holds for the whole group: STRICT_PACK only on the kept bundles' node,
// STRICT_SPREAD only on nodes without a kept bundle; SPREAD prefers those,
// PACK prefers the kept bundles' nodes. When placed, node_ids covers every
// bundle (kept ones unchanged); the missing ones are granted all at once.
// `pins` as for place(); a missing pinned bundle goes back to its node only.
PlacementDecision place_missing(const std::vector<ResourceSet>& bundles, Strategy strategy,
                                const std::vector<NodeCapacity>& nodes, const std::vector<std::string>& current,
                                const std::vector<std::string>& pins = {});

}  // namespace llmctl::placement
