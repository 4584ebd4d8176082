#include "runtime/control/cluster_state.h"

#include <fmt/format.h>

namespace llmctl::control {

std::string_view node_state_name(NodeState state) { return state == NodeState::kActive ? "Active" : "Dead"; }

nlohmann::json node_to_json(const NodeRecord& n) {
  return {{"node_id", n.node_id},
          {"name", n.name},
          {"address", n.address},
          {"role", n.role},
          {"version", n.version},
          {"resources", placement::resources_to_json(n.resources)},
          {"state", node_state_name(n.state)},
          {"reason", n.reason},
          {"state_since_ms", n.state_since_ms}};
}

Result<NodeRecord> node_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("node is not an object");
  NodeRecord n;
  try {
    n.node_id = j.at("node_id").get<std::string>();
    n.name = j.value("name", "");
    n.address = j.value("address", "");
    n.role = j.value("role", "worker");
    n.version = j.value("version", "");
    n.state = j.value("state", "Active") == "Dead" ? NodeState::kDead : NodeState::kActive;
    n.reason = j.value("reason", "");
    n.state_since_ms = j.value("state_since_ms", std::int64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("node: {}", e.what()));
  }
  ASSIGN_OR_RETURN(n.resources, placement::resources_from_json(j.value("resources", nlohmann::json::object())));
  if (n.node_id.empty()) return Status::invalid_argument("node has an empty node_id");
  return n;
}

nlohmann::json group_to_json(const GroupRecord& g) {
  nlohmann::json bundles = nlohmann::json::array();
  for (const auto& b : g.bundles) {
    nlohmann::json jb = {{"resources", placement::resources_to_json(b.resources)},
                         {"command", b.command},
                         {"node_id", b.node_id},
                         {"state", b.state},
                         {"exit_code", b.exit_code},
                         {"num_restarts", b.num_restarts},
                         {"pid", b.pid},
                         {"gpu_indices", b.gpu_indices}};
    if (!b.pinned_node.empty()) jb["pinned_node"] = b.pinned_node;
    bundles.push_back(std::move(jb));
  }
  return {{"group_id", g.group_id},
          {"name", g.name},
          {"strategy", placement::strategy_name(g.strategy)},
          {"restart", g.restart},
          {"max_restarts", g.max_restarts},
          {"env", g.env},
          {"bundles", bundles},
          {"state", g.state},
          {"reason", g.reason},
          {"created_ms", g.created_ms}};
}

Result<GroupRecord> group_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("group is not an object");
  GroupRecord g;
  try {
    g.group_id = j.at("group_id").get<std::string>();
    g.name = j.value("name", "");
    ASSIGN_OR_RETURN(g.strategy, placement::parse_strategy(j.value("strategy", "PACK")));
    g.restart = j.value("restart", "never");
    g.max_restarts = j.value("max_restarts", 3);
    g.env = j.value("env", std::map<std::string, std::string>{});
    g.state = j.value("state", "pending");
    g.reason = j.value("reason", "");
    g.created_ms = j.value("created_ms", std::int64_t{0});
    for (const auto& jb : j.at("bundles")) {
      BundleRecord b;
      ASSIGN_OR_RETURN(b.resources, placement::resources_from_json(jb.value("resources", nlohmann::json::object())));
      b.command = jb.value("command", std::vector<std::string>{});
      b.node_id = jb.value("node_id", "");
      b.state = jb.value("state", "pending");
      b.exit_code = jb.value("exit_code", 0);
      b.num_restarts = jb.value("num_restarts", 0);
      b.pid = jb.value("pid", 0);
      b.pinned_node = jb.value("pinned_node", "");
      b.gpu_indices = jb.value("gpu_indices", std::vector<int>{});
      g.bundles.push_back(std::move(b));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("group: {}", e.what()));
  }
  if (g.group_id.empty()) return Status::invalid_argument("group has an empty group_id");
  return g;
}

nlohmann::json node_record(const NodeRecord& node) { return {{"op", "node"}, {"node", node_to_json(node)}}; }
nlohmann::json group_record(const GroupRecord& group) { return {{"op", "group"}, {"group", group_to_json(group)}}; }
nlohmann::json kv_put_record(const std::string& key, const std::string& value) {
  return {{"op", "kv_put"}, {"key", key}, {"value", value}};
}
nlohmann::json kv_delete_record(const std::string& prefix) { return {{"op", "kv_delete"}, {"prefix", prefix}}; }
nlohmann::json failure_record(std::int64_t time_ms, const std::string& what) {
  return {{"op", "failure"}, {"time_ms", time_ms}, {"what", what}};
}
nlohmann::json token_hash_record(const std::string& hash) { return {{"op", "token_hash"}, {"hash", hash}}; }

Status ClusterState::apply(const nlohmann::json& r) {
  if (!r.is_object() || !r.contains("op") || !r["op"].is_string()) {
    return Status::invalid_argument("record has no string \"op\"");
  }
  const std::string op = r["op"].get<std::string>();
  try {
    if (op == "node") {
      ASSIGN_OR_RETURN(NodeRecord n, node_from_json(r.at("node")));
      nodes[n.node_id] = std::move(n);
    } else if (op == "group") {
      ASSIGN_OR_RETURN(GroupRecord g, group_from_json(r.at("group")));
      // Group ids are "g<seq>"; keep the sequence past every id seen.
      if (g.group_id.size() > 1 && g.group_id[0] == 'g') {
        std::uint64_t seq = std::strtoull(g.group_id.c_str() + 1, nullptr, 10);
        next_group_seq = std::max(next_group_seq, seq + 1);
      }
      if (g.state == "removed") {
        groups.erase(g.group_id);
      } else {
        groups[g.group_id] = std::move(g);
      }
    } else if (op == "kv_put") {
      kv[r.at("key").get<std::string>()] = r.at("value").get<std::string>();
    } else if (op == "kv_delete") {
      std::string prefix = r.at("prefix").get<std::string>();
      for (auto it = kv.lower_bound(prefix); it != kv.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
        it = kv.erase(it);
      }
    } else if (op == "failure") {
      failures.push_back({r.at("time_ms").get<std::int64_t>(), r.at("what").get<std::string>()});
      while (failures.size() > kMaxFailures) failures.pop_front();
    } else if (op == "token_hash") {
      token_hash = r.at("hash").get<std::string>();
    } else {
      return Status::invalid_argument(fmt::format("unknown record op \"{}\"", op));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("record {}: {}", op, e.what()));
  }
  return Status::ok();
}

nlohmann::json ClusterState::to_json() const {
  nlohmann::json j;
  j["nodes"] = nlohmann::json::array();
  for (const auto& [id, n] : nodes) j["nodes"].push_back(node_to_json(n));
  j["kv"] = kv;
  j["groups"] = nlohmann::json::array();
  for (const auto& [id, g] : groups) j["groups"].push_back(group_to_json(g));
  j["failures"] = nlohmann::json::array();
  for (const auto& f : failures) j["failures"].push_back({{"time_ms", f.time_ms}, {"what", f.what}});
  j["token_hash"] = token_hash;
  j["next_group_seq"] = next_group_seq;
  return j;
}

Result<ClusterState> ClusterState::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("snapshot is not a JSON object");
  ClusterState s;
  try {
    for (const auto& jn : j.value("nodes", nlohmann::json::array())) {
      ASSIGN_OR_RETURN(NodeRecord n, node_from_json(jn));
      s.nodes[n.node_id] = std::move(n);
    }
    s.kv = j.value("kv", std::map<std::string, std::string>{});
    for (const auto& jg : j.value("groups", nlohmann::json::array())) {
      ASSIGN_OR_RETURN(GroupRecord g, group_from_json(jg));
      s.groups[g.group_id] = std::move(g);
    }
    for (const auto& jf : j.value("failures", nlohmann::json::array())) {
      s.failures.push_back({jf.at("time_ms").get<std::int64_t>(), jf.at("what").get<std::string>()});
    }
    s.token_hash = j.value("token_hash", "");
    s.next_group_seq = j.value("next_group_seq", std::uint64_t{1});
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("snapshot: {}", e.what()));
  }
  return s;
}

ResourceSet ClusterState::used_on(const std::string& node_id) const {
  ResourceSet used;
  for (const auto& [id, g] : groups) {
    if (g.state != "placed") continue;
    for (const auto& b : g.bundles) {
      if (b.node_id == node_id) placement::add_to(used, b.resources);
    }
  }
  return used;
}

std::set<int> ClusterState::gpu_indices_held(const std::string& node_id, const std::string& except_group) const {
  std::set<int> held;
  for (const auto& [id, g] : groups) {
    if (g.state != "placed" || id == except_group) continue;
    for (const auto& b : g.bundles) {
      if (b.node_id == node_id) held.insert(b.gpu_indices.begin(), b.gpu_indices.end());
    }
  }
  return held;
}

std::vector<std::string> ClusterState::keys_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = kv.lower_bound(prefix); it != kv.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(it->first);
  }
  return out;
}

}  // namespace llmctl::control
