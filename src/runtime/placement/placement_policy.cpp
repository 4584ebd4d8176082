#include "runtime/placement/placement_policy.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include <fmt/format.h>

namespace llmctl::placement {
namespace {

// A scalar for "how much room is left", used to prefer the emptiest node
// (SPREAD) or the fullest one that still fits (PACK). GPUs dominate.
double room(const ResourceSet& available) {
  double score = 0;
  for (const auto& [name, amount] : available) {
    if (name == "GPU") score += amount * 1e6;
    else if (name == "CPU") score += amount * 1e3;
    else if (name != "memory") score += amount;
  }
  return score;
}

ResourceSet sum(const std::vector<ResourceSet>& bundles) {
  ResourceSet total;
  for (const auto& b : bundles) add_to(total, b);
  return total;
}

// STRICT_SPREAD: a matching of bundles to distinct nodes, by backtracking
// (requests have a handful of bundles; nodes are tried emptiest first).
bool match_distinct(const std::vector<ResourceSet>& bundles, const std::vector<NodeCapacity>& nodes, std::size_t i,
                    std::vector<bool>& used, std::vector<std::string>& out) {
  if (i == bundles.size()) return true;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    if (used[n] || !fits(bundles[i], nodes[n].available)) continue;
    used[n] = true;
    out[i] = nodes[n].node_id;
    if (match_distinct(bundles, nodes, i + 1, used, out)) return true;
    used[n] = false;
  }
  return false;
}

std::string shortage(const std::vector<ResourceSet>& bundles, const std::vector<NodeCapacity>& nodes) {
  for (std::size_t i = 0; i < bundles.size(); ++i) {
    bool any = std::any_of(nodes.begin(), nodes.end(), [&](const NodeCapacity& n) { return fits(bundles[i], n.available); });
    if (!any) {
      return fmt::format("no alive node has {} available for bundle {}", format_resources(bundles[i]), i);
    }
  }
  return "";
}

}  // namespace

std::string_view strategy_name(Strategy strategy) {
  switch (strategy) {
    case Strategy::kPack: return "PACK";
    case Strategy::kSpread: return "SPREAD";
    case Strategy::kStrictPack: return "STRICT_PACK";
    case Strategy::kStrictSpread: return "STRICT_SPREAD";
  }
  return "?";
}

Result<Strategy> parse_strategy(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (Strategy s : {Strategy::kPack, Strategy::kSpread, Strategy::kStrictPack, Strategy::kStrictSpread}) {
    if (strategy_name(s) == upper) return s;
  }
  return Status::invalid_argument(
      fmt::format("unknown placement strategy \"{}\" (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD)", name));
}

PlacementDecision place(const std::vector<ResourceSet>& bundles, Strategy strategy, std::vector<NodeCapacity> nodes) {
  PlacementDecision d;
  if (bundles.empty()) {
    d.reason = "the request has no bundles";
    d.infeasible = true;
    return d;
  }
  std::sort(nodes.begin(), nodes.end(), [](const NodeCapacity& a, const NodeCapacity& b) { return a.node_id < b.node_id; });
  if (nodes.empty()) {
    d.reason = "no alive nodes";
    return d;
  }

  // Would it fit on the cluster if nothing else ran? Separates "wait" from "never".
  std::vector<NodeCapacity> empty = nodes;
  for (auto& n : empty) n.available = n.total;
  auto infeasible_reason = [&]() -> std::string {
    for (std::size_t i = 0; i < bundles.size(); ++i) {
      if (std::none_of(empty.begin(), empty.end(), [&](const NodeCapacity& n) { return fits(bundles[i], n.total); })) {
        return fmt::format("infeasible: no node has {} in total (bundle {})", format_resources(bundles[i]), i);
      }
    }
    if (strategy == Strategy::kStrictPack) {
      ResourceSet all = sum(bundles);
      if (std::none_of(empty.begin(), empty.end(), [&](const NodeCapacity& n) { return fits(all, n.total); })) {
        return fmt::format("infeasible: STRICT_PACK needs {} on one node; no node has that much", format_resources(all));
      }
    }
    if (strategy == Strategy::kStrictSpread) {
      std::vector<bool> used(empty.size());
      std::vector<std::string> out(bundles.size());
      if (!match_distinct(bundles, empty, 0, used, out)) {
        return fmt::format("infeasible: STRICT_SPREAD needs {} distinct nodes with the requested resources; the cluster "
                           "has {} alive nodes",
                           bundles.size(), empty.size());
      }
    }
    return "";
  };

  d.node_ids.assign(bundles.size(), "");
  switch (strategy) {
    case Strategy::kStrictPack: {
      ResourceSet all = sum(bundles);
      // The fullest node that still fits keeps big nodes free for big requests.
      const NodeCapacity* best = nullptr;
      for (const auto& n : nodes) {
        if (fits(all, n.available) && (!best || room(n.available) < room(best->available))) best = &n;
      }
      if (best) {
        d.node_ids.assign(bundles.size(), best->node_id);
        d.placed = true;
      } else {
        d.reason = fmt::format("STRICT_PACK needs {} on one node; none has that much available", format_resources(all));
      }
      break;
    }
    case Strategy::kStrictSpread: {
      std::vector<NodeCapacity> order = nodes;
      std::stable_sort(order.begin(), order.end(),
                       [](const NodeCapacity& a, const NodeCapacity& b) { return room(a.available) > room(b.available); });
      std::vector<bool> used(order.size());
      if (match_distinct(bundles, order, 0, used, d.node_ids)) {
        d.placed = true;
      } else {
        d.reason = fmt::format("STRICT_SPREAD needs {} distinct nodes with the requested resources available",
                               bundles.size());
      }
      break;
    }
    case Strategy::kPack:
    case Strategy::kSpread: {
      if (strategy == Strategy::kPack) {
        // One node for everything when any can hold it (the fullest such node).
        ResourceSet all = sum(bundles);
        const NodeCapacity* best = nullptr;
        for (const auto& n : nodes) {
          if (fits(all, n.available) && (!best || room(n.available) < room(best->available))) best = &n;
        }
        if (best) {
          d.node_ids.assign(bundles.size(), best->node_id);
          d.placed = true;
          break;
        }
      }
      std::vector<NodeCapacity> before = nodes;
      std::vector<int> count(nodes.size(), 0);
      bool ok = true;
      for (std::size_t i = 0; i < bundles.size() && ok; ++i) {
        int best = -1;
        for (std::size_t n = 0; n < nodes.size(); ++n) {
          if (!fits(bundles[i], nodes[n].available)) continue;
          if (best < 0) {
            best = static_cast<int>(n);
            continue;
          }
          const auto& b = nodes[static_cast<std::size_t>(best)];
          int cb = count[static_cast<std::size_t>(best)];
          bool better;
          if (strategy == Strategy::kPack) {
            // Most bundles already there, then the fullest.
            better = count[n] > cb || (count[n] == cb && room(nodes[n].available) < room(b.available));
          } else {
            // Fewest bundles already there, then the emptiest.
            better = count[n] < cb || (count[n] == cb && room(nodes[n].available) > room(b.available));
          }
          if (better) best = static_cast<int>(n);
        }
        if (best < 0) {
          ok = false;
          break;
        }
        auto& chosen = nodes[static_cast<std::size_t>(best)];
        subtract_from(chosen.available, bundles[i]);
        ++count[static_cast<std::size_t>(best)];
        d.node_ids[i] = chosen.node_id;
      }
      d.placed = ok;
      if (!ok) {
        std::string s = shortage(bundles, before);
        d.reason = s.empty() ? fmt::format("not enough resources available for all {} bundles at once", bundles.size())
                             : s;
      }
      break;
    }
  }
  if (!d.placed) {
    d.node_ids.clear();
    std::string never = infeasible_reason();
    if (!never.empty()) {
      d.infeasible = true;
      d.reason = never;
    }
  }
  return d;
}

PlacementDecision place_missing(const std::vector<ResourceSet>& bundles, Strategy strategy,
                                const std::vector<NodeCapacity>& nodes, const std::vector<std::string>& current) {
  PlacementDecision d;
  if (current.size() != bundles.size()) {
    d.reason = fmt::format("{} node ids for {} bundles", current.size(), bundles.size());
    d.infeasible = true;
    return d;
  }
  std::vector<ResourceSet> missing;
  std::vector<std::size_t> missing_index;
  std::set<std::string> kept_nodes;
  for (std::size_t i = 0; i < bundles.size(); ++i) {
    if (current[i].empty()) {
      missing.push_back(bundles[i]);
      missing_index.push_back(i);
    } else {
      kept_nodes.insert(current[i]);
    }
  }
  if (missing.empty() || kept_nodes.empty()) {
    d = missing.empty() ? PlacementDecision{true, current, "", false} : place(bundles, strategy, nodes);
    return d;
  }
  std::vector<NodeCapacity> with_kept, without_kept;
  for (const auto& n : nodes) (kept_nodes.count(n.node_id) ? with_kept : without_kept).push_back(n);

  // (candidate nodes, strategy for the missing bundles among them), tried in order.
  std::vector<std::pair<const std::vector<NodeCapacity>*, Strategy>> attempts;
  switch (strategy) {
    case Strategy::kStrictPack:
      attempts.push_back({&with_kept, Strategy::kStrictPack});
      break;
    case Strategy::kStrictSpread:
      attempts.push_back({&without_kept, Strategy::kStrictSpread});
      break;
    case Strategy::kSpread:
      attempts.push_back({&without_kept, Strategy::kSpread});
      attempts.push_back({&nodes, Strategy::kSpread});
      break;
    case Strategy::kPack:
      attempts.push_back({&with_kept, Strategy::kPack});
      attempts.push_back({&nodes, Strategy::kPack});
      break;
  }
  PlacementDecision last;
  for (const auto& [candidates, s] : attempts) {
    last = place(missing, s, *candidates);
    if (!last.placed) continue;
    d.placed = true;
    d.node_ids = current;
    for (std::size_t k = 0; k < missing_index.size(); ++k) d.node_ids[missing_index[k]] = last.node_ids[k];
    return d;
  }
  d.reason = fmt::format("re-placing {} lost bundle(s) with {}: {}", missing.size(), strategy_name(strategy),
                         last.reason.empty() ? "no eligible node" : last.reason);
  return d;
}

}  // namespace llmctl::placement
