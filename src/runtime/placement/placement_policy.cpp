#include "runtime/placement/placement_policy.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
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
// (requests have a handful of bundles; nodes are tried emptiest first). A
// pinned bundle (pin_ids[i] set) only tries its own node.
bool match_distinct(const std::vector<ResourceSet>& bundles, const std::vector<std::string>& pin_ids,
                    const std::vector<NodeCapacity>& nodes, std::size_t i, std::vector<bool>& used,
                    std::vector<std::string>& out) {
  if (i == bundles.size()) return true;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    if (used[n] || (!pin_ids[i].empty() && nodes[n].node_id != pin_ids[i]) || !fits(bundles[i], nodes[n].available)) {
      continue;
    }
    used[n] = true;
    out[i] = nodes[n].node_id;
    if (match_distinct(bundles, pin_ids, nodes, i + 1, used, out)) return true;
    used[n] = false;
  }
  return false;
}

std::string node_label(const NodeCapacity& n) {
  return n.name.empty() || n.name == n.node_id ? n.node_id : fmt::format("{} ({})", n.name, n.node_id);
}

const NodeCapacity& node_with_id(const std::vector<NodeCapacity>& nodes, const std::string& id) {
  return *std::find_if(nodes.begin(), nodes.end(), [&](const NodeCapacity& n) { return n.node_id == id; });
}

// `have` cut down to the names `want` asks for, so a reason reads
// "{GPU: 0} available" rather than listing every resource of the node.
ResourceSet only_names_of(const ResourceSet& have, const ResourceSet& want) {
  ResourceSet out;
  for (const auto& [name, amount] : want) {
    auto it = have.find(name);
    out[name] = it == have.end() ? 0.0 : it->second;
  }
  return out;
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

PlacementDecision place(const std::vector<ResourceSet>& bundles, Strategy strategy, std::vector<NodeCapacity> nodes,
                        const std::vector<std::string>& pins) {
  PlacementDecision d;
  if (bundles.empty()) {
    d.reason = "the request has no bundles";
    d.infeasible = true;
    return d;
  }
  if (!pins.empty() && pins.size() != bundles.size()) {
    d.reason = fmt::format("{} pins for {} bundles", pins.size(), bundles.size());
    d.infeasible = true;
    return d;
  }
  std::sort(nodes.begin(), nodes.end(), [](const NodeCapacity& a, const NodeCapacity& b) { return a.node_id < b.node_id; });
  if (nodes.empty()) {
    d.reason = "no alive nodes";
    return d;
  }

  // Pins resolved to node ids: an id wins over a name; a name must be unique.
  std::vector<std::string> pin_ids(bundles.size());
  for (std::size_t i = 0; i < pins.size(); ++i) {
    if (pins[i].empty()) continue;
    auto by_id = std::find_if(nodes.begin(), nodes.end(), [&](const NodeCapacity& n) { return n.node_id == pins[i]; });
    if (by_id != nodes.end()) {
      pin_ids[i] = by_id->node_id;
      continue;
    }
    std::vector<std::string> named;
    for (const auto& n : nodes) {
      if (n.name == pins[i]) named.push_back(n.node_id);
    }
    if (named.size() > 1) {
      d.reason = fmt::format("bundle {} is pinned to \"{}\", the name of {} nodes ({}); pin it by node id", i, pins[i],
                             named.size(), fmt::join(named, ", "));
      d.infeasible = true;
      return d;
    }
    if (named.empty()) {
      d.reason = fmt::format("bundle {} is pinned to node \"{}\", which is not an alive node of the cluster", i, pins[i]);
      return d;
    }
    pin_ids[i] = named[0];
  }
  // What the pinned bundles take from each of their nodes.
  std::map<std::string, ResourceSet> pinned_sum;
  std::map<std::string, std::size_t> first_pinned;
  for (std::size_t i = 0; i < bundles.size(); ++i) {
    if (pin_ids[i].empty()) continue;
    add_to(pinned_sum[pin_ids[i]], bundles[i]);
    first_pinned.emplace(pin_ids[i], i);
  }
  // STRICT_PACK's one node when a bundle is pinned; `split` when pins disagree.
  std::string pack_target;
  bool split = false;
  for (const auto& [id, need] : pinned_sum) {
    if (pack_target.empty()) pack_target = id;
    else split = true;
  }

  // Would it fit on the cluster if nothing else ran? Separates "wait" from "never".
  std::vector<NodeCapacity> empty = nodes;
  for (auto& n : empty) n.available = n.total;
  auto infeasible_reason = [&]() -> std::string {
    for (const auto& [id, need] : pinned_sum) {
      const NodeCapacity& n = node_with_id(nodes, id);
      if (!fits(need, n.total)) {
        return fmt::format("infeasible: bundle {} is pinned to node {}, which has {} in total, not {}",
                           first_pinned[id], node_label(n), format_resources(only_names_of(n.total, need)),
                           format_resources(need));
      }
    }
    for (std::size_t i = 0; i < bundles.size(); ++i) {
      if (!pin_ids[i].empty()) continue;
      if (std::none_of(empty.begin(), empty.end(), [&](const NodeCapacity& n) { return fits(bundles[i], n.total); })) {
        return fmt::format("infeasible: no node has {} in total (bundle {})", format_resources(bundles[i]), i);
      }
    }
    if (strategy == Strategy::kStrictPack) {
      ResourceSet all = sum(bundles);
      if (split) return "infeasible: STRICT_PACK, but bundles are pinned to different nodes";
      if (!pack_target.empty()) {
        const NodeCapacity& n = node_with_id(nodes, pack_target);
        if (!fits(all, n.total)) {
          return fmt::format("infeasible: STRICT_PACK needs {} on node {}, where bundle {} is pinned; it has {} in total",
                             format_resources(all), node_label(n), first_pinned[pack_target],
                             format_resources(only_names_of(n.total, all)));
        }
      } else if (std::none_of(empty.begin(), empty.end(), [&](const NodeCapacity& n) { return fits(all, n.total); })) {
        return fmt::format("infeasible: STRICT_PACK needs {} on one node; no node has that much", format_resources(all));
      }
    }
    if (strategy == Strategy::kStrictSpread) {
      for (std::size_t i = 0; i < bundles.size(); ++i) {
        if (pin_ids[i].empty() || first_pinned[pin_ids[i]] == i) continue;
        return fmt::format("infeasible: STRICT_SPREAD, but bundles {} and {} are pinned to the same node {}",
                           first_pinned[pin_ids[i]], i, node_label(node_with_id(nodes, pin_ids[i])));
      }
      std::vector<bool> used(empty.size());
      std::vector<std::string> out(bundles.size());
      if (!match_distinct(bundles, pin_ids, empty, 0, used, out)) {
        return fmt::format("infeasible: STRICT_SPREAD needs {} distinct nodes with the requested resources; the cluster "
                           "has {} alive nodes",
                           bundles.size(), empty.size());
      }
    }
    return "";
  };

  // A pinned bundle its node cannot hold now waits, whatever the strategy.
  std::string pin_shortage;
  for (const auto& [id, need] : pinned_sum) {
    const NodeCapacity& n = node_with_id(nodes, id);
    if (!fits(need, n.available)) {
      pin_shortage = fmt::format("bundle {} is pinned to node {}, which has {} available, not {}", first_pinned[id],
                                 node_label(n), format_resources(only_names_of(n.available, need)),
                                 format_resources(need));
      break;
    }
  }

  d.node_ids.assign(bundles.size(), "");
  // The fullest node that holds `all` (among `candidates` when set) keeps big
  // nodes free for big requests.
  auto fullest_fitting = [&](const ResourceSet& all, const std::string& only) -> const NodeCapacity* {
    const NodeCapacity* best = nullptr;
    for (const auto& n : nodes) {
      if (!only.empty() && n.node_id != only) continue;
      if (fits(all, n.available) && (!best || room(n.available) < room(best->available))) best = &n;
    }
    return best;
  };
  if (!pin_shortage.empty()) {
    d.reason = pin_shortage;
  } else {
    switch (strategy) {
      case Strategy::kStrictPack: {
        ResourceSet all = sum(bundles);
        const NodeCapacity* best = split ? nullptr : fullest_fitting(all, pack_target);
        if (best) {
          d.node_ids.assign(bundles.size(), best->node_id);
          d.placed = true;
        } else if (split) {
          d.reason = "STRICT_PACK, but bundles are pinned to different nodes";
        } else if (!pack_target.empty()) {
          const NodeCapacity& n = node_with_id(nodes, pack_target);
          d.reason = fmt::format("STRICT_PACK needs {} on node {}, where bundle {} is pinned; it has {} available",
                                 format_resources(all), node_label(n), first_pinned[pack_target],
                                 format_resources(only_names_of(n.available, all)));
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
        if (match_distinct(bundles, pin_ids, order, 0, used, d.node_ids)) {
          d.placed = true;
        } else {
          d.reason = fmt::format("STRICT_SPREAD needs {} distinct nodes with the requested resources available",
                                 bundles.size());
        }
        break;
      }
      case Strategy::kPack:
      case Strategy::kSpread: {
        if (strategy == Strategy::kPack && !split) {
          // One node for everything when any can hold it (the fullest such
          // node; with a pin, only the pinned node).
          if (const NodeCapacity* best = fullest_fitting(sum(bundles), pack_target)) {
            d.node_ids.assign(bundles.size(), best->node_id);
            d.placed = true;
            break;
          }
        }
        std::vector<NodeCapacity> before = nodes;
        std::vector<int> count(nodes.size(), 0);
        // Pinned bundles first: they count as "already there" for the others.
        for (std::size_t i = 0; i < bundles.size(); ++i) {
          if (pin_ids[i].empty()) continue;
          for (std::size_t n = 0; n < nodes.size(); ++n) {
            if (nodes[n].node_id != pin_ids[i]) continue;
            subtract_from(nodes[n].available, bundles[i]);
            ++count[n];
          }
          d.node_ids[i] = pin_ids[i];
        }
        bool ok = true;
        for (std::size_t i = 0; i < bundles.size() && ok; ++i) {
          if (!pin_ids[i].empty()) continue;
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
                                const std::vector<NodeCapacity>& nodes, const std::vector<std::string>& current,
                                const std::vector<std::string>& pins) {
  PlacementDecision d;
  if (current.size() != bundles.size() || (!pins.empty() && pins.size() != bundles.size())) {
    d.reason = fmt::format("{} node ids and {} pins for {} bundles", current.size(), pins.size(), bundles.size());
    d.infeasible = true;
    return d;
  }
  std::vector<ResourceSet> missing;
  std::vector<std::string> missing_pins;
  std::vector<std::size_t> missing_index;
  std::set<std::string> kept_nodes;
  for (std::size_t i = 0; i < bundles.size(); ++i) {
    if (current[i].empty()) {
      missing.push_back(bundles[i]);
      missing_pins.push_back(pins.empty() ? std::string() : pins[i]);
      missing_index.push_back(i);
    } else {
      kept_nodes.insert(current[i]);
    }
  }
  if (missing.empty() || kept_nodes.empty()) {
    d = missing.empty() ? PlacementDecision{true, current, "", false} : place(bundles, strategy, nodes, pins);
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
    last = place(missing, s, *candidates, missing_pins);
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
