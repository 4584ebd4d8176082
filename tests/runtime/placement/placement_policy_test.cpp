#include "runtime/placement/placement_policy.h"

#include <set>

#include <doctest/doctest.h>

using namespace llmctl::placement;

namespace {

NodeCapacity node(const std::string& id, double gpus, double cpus = 8) {
  ResourceSet r{{"GPU", gpus}, {"CPU", cpus}, {"node:" + id, 1}};
  return {id, r, r, ""};
}

std::set<std::string> distinct(const std::vector<std::string>& ids) { return {ids.begin(), ids.end()}; }

}  // namespace

TEST_CASE("fits and subtract treat absent names as zero") {
  CHECK(fits({{"GPU", 1}}, {{"GPU", 1}, {"CPU", 4}}));
  CHECK_FALSE(fits({{"GPU", 1}}, {{"CPU", 4}}));
  CHECK(fits({{"GPU", 0.5}, {"x", 0}}, {{"GPU", 0.5}}));
  ResourceSet a{{"GPU", 1}};
  subtract_from(a, {{"GPU", 0.3}});
  subtract_from(a, {{"GPU", 0.7}});
  CHECK(a["GPU"] == 0.0);
}

TEST_CASE("resources_from_json rejects negative and non-numeric values, naming the key") {
  CHECK(resources_from_json(nlohmann::json{{"GPU", 1}, {"node:a", 1}}).is_ok());
  auto bad = resources_from_json(nlohmann::json{{"GPU", -1}});
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("GPU") != std::string::npos);
  CHECK_FALSE(resources_from_json(nlohmann::json{{"CPU", "two"}}).is_ok());
  CHECK_FALSE(resources_from_json(nlohmann::json::array()).is_ok());
}

TEST_CASE("parse_strategy accepts the four names in any case") {
  CHECK(*parse_strategy("spread") == Strategy::kSpread);
  CHECK(*parse_strategy("STRICT_PACK") == Strategy::kStrictPack);
  CHECK_FALSE(parse_strategy("RANDOM").is_ok());
}

TEST_CASE("SPREAD of two 1-GPU bundles over 1-GPU nodes lands on two nodes") {
  auto d = place({{{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kSpread, {node("a", 1), node("b", 1), node("c", 1)});
  REQUIRE(d.placed);
  CHECK(d.node_ids.size() == 2);
  CHECK(distinct(d.node_ids).size() == 2);
}

TEST_CASE("SPREAD reuses nodes when there are fewer nodes than bundles") {
  auto d = place({{{"CPU", 1}}, {{"CPU", 1}}, {{"CPU", 1}}}, Strategy::kSpread, {node("a", 0), node("b", 0)});
  REQUIRE(d.placed);
  CHECK(distinct(d.node_ids).size() == 2);
}

TEST_CASE("PACK puts everything on one node when it fits") {
  auto d = place({{{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kPack, {node("a", 1), node("b", 4), node("c", 1)});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"b", "b"});
}

TEST_CASE("PACK spills over when no node holds all bundles") {
  auto d = place({{{"GPU", 1}}, {{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kPack, {node("a", 2), node("b", 1)});
  REQUIRE(d.placed);
  CHECK(std::count(d.node_ids.begin(), d.node_ids.end(), "a") == 2);
  CHECK(std::count(d.node_ids.begin(), d.node_ids.end(), "b") == 1);
}

TEST_CASE("STRICT_PACK fails rather than splitting, and says why") {
  auto d = place({{{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kStrictPack, {node("a", 1), node("b", 1)});
  CHECK_FALSE(d.placed);
  CHECK(d.infeasible);
  CHECK(d.reason.find("STRICT_PACK") != std::string::npos);
  auto ok = place({{{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kStrictPack, {node("a", 1), node("b", 2)});
  REQUIRE(ok.placed);
  CHECK(ok.node_ids == std::vector<std::string>{"b", "b"});
}

TEST_CASE("STRICT_SPREAD needs as many distinct nodes as bundles") {
  auto d = place({{{"GPU", 1}}, {{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kStrictSpread, {node("a", 2), node("b", 2)});
  CHECK_FALSE(d.placed);
  CHECK(d.infeasible);
  CHECK(d.reason.find("distinct") != std::string::npos);
  auto ok = place({{{"GPU", 1}}, {{"GPU", 1}}}, Strategy::kStrictSpread, {node("a", 2), node("b", 2)});
  REQUIRE(ok.placed);
  CHECK(distinct(ok.node_ids).size() == 2);
}

TEST_CASE("STRICT_SPREAD backtracks past a greedy dead end") {
  // Bundle 0 fits anywhere, bundle 1 only on "a": a greedy pick of "a" for
  // bundle 0 would fail; the matching must put bundle 0 on "b".
  NodeCapacity a{"a", {{"GPU", 1}, {"special", 1}}, {{"GPU", 1}, {"special", 1}}, ""};
  NodeCapacity b{"b", {{"GPU", 1}}, {{"GPU", 1}}, ""};
  auto d = place({{{"GPU", 1}}, {{"GPU", 1}, {"special", 1}}}, Strategy::kStrictSpread, {a, b});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"b", "a"});
}

TEST_CASE("busy resources make a request wait, not infeasible") {
  NodeCapacity a = node("a", 1);
  a.available["GPU"] = 0;  // granted to someone else
  auto d = place({{{"GPU", 1}}}, Strategy::kPack, {a});
  CHECK_FALSE(d.placed);
  CHECK_FALSE(d.infeasible);
  CHECK(d.reason.find("GPU") != std::string::npos);
}

TEST_CASE("a resource no node has is infeasible, naming it") {
  auto d = place({{{"GPU", 8}}}, Strategy::kSpread, {node("a", 1), node("b", 1)});
  CHECK_FALSE(d.placed);
  CHECK(d.infeasible);
  CHECK(d.reason.find("GPU: 8") != std::string::npos);
}

TEST_CASE("custom node resources pin a bundle to a node") {
  auto d = place({{{"node:c", 0.5}}}, Strategy::kPack, {node("a", 1), node("b", 1), node("c", 1)});
  REQUIRE(d.placed);
  CHECK(d.node_ids[0] == "c");
}

TEST_CASE("no nodes and no bundles are reported, not crashed on") {
  CHECK_FALSE(place({{{"GPU", 1}}}, Strategy::kPack, {}).placed);
  auto d = place({}, Strategy::kPack, {node("a", 1)});
  CHECK_FALSE(d.placed);
  CHECK(d.infeasible);
}

TEST_CASE("place_missing re-places only the lost bundles and keeps the others where they are") {
  // Bundle 1 was on a node that died; a, c still run bundles 0 and 2 (their GPU is used).
  std::vector<ResourceSet> bundles = {{{"GPU", 1}}, {{"GPU", 1}}, {{"GPU", 1}}};
  auto a = node("a", 1), c = node("c", 1);
  a.available["GPU"] = 0;
  c.available["GPU"] = 0;
  auto d = place_missing(bundles, Strategy::kStrictSpread, {a, node("b", 1), c, node("d", 1)}, {"a", "", "c"});
  REQUIRE(d.placed);
  CHECK(d.node_ids[0] == "a");
  CHECK(d.node_ids[2] == "c");
  CHECK((d.node_ids[1] == "b" || d.node_ids[1] == "d"));
}

TEST_CASE("place_missing keeps STRICT_SPREAD off nodes that hold a kept bundle, and says why it waits") {
  std::vector<ResourceSet> bundles = {{{"CPU", 1}}, {{"CPU", 1}}};
  // Only node a is alive and it runs bundle 0: it has room, but STRICT_SPREAD forbids it.
  auto d = place_missing(bundles, Strategy::kStrictSpread, {node("a", 0)}, {"a", ""});
  CHECK_FALSE(d.placed);
  CHECK(d.reason.find("lost bundle") != std::string::npos);
  // SPREAD may fall back to the same node.
  auto s = place_missing(bundles, Strategy::kSpread, {node("a", 0)}, {"a", ""});
  REQUIRE(s.placed);
  CHECK(s.node_ids == std::vector<std::string>{"a", "a"});
}

TEST_CASE("place_missing: STRICT_PACK only on the kept node; PACK prefers it") {
  std::vector<ResourceSet> bundles = {{{"GPU", 1}}, {{"GPU", 1}}};
  auto a = node("a", 2);
  a.available["GPU"] = 1;  // bundle 0 holds one of its two GPUs
  auto d = place_missing(bundles, Strategy::kStrictPack, {node("b", 8), a}, {"a", ""});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"a", "a"});
  a.available["GPU"] = 0;
  CHECK_FALSE(place_missing(bundles, Strategy::kStrictPack, {node("b", 8), a}, {"a", ""}).placed);
  auto p = place_missing(bundles, Strategy::kPack, {node("b", 8), a}, {"a", ""});
  REQUIRE(p.placed);
  CHECK(p.node_ids == std::vector<std::string>{"a", "b"});
}

namespace {

NodeCapacity named(const std::string& id, const std::string& name, double gpus) {
  NodeCapacity n = node(id, gpus);
  n.name = name;
  return n;
}

}  // namespace

TEST_CASE("PACK with a pinned bundle packs the others next to it, not on the fullest node") {
  // Unpinned, PACK would take "a" (the fullest node holding both).
  std::vector<ResourceSet> two = {{{"GPU", 1}}, {{"GPU", 1}}};
  CHECK(place(two, Strategy::kPack, {named("a", "lf001", 2), named("b", "lf002", 4)}).node_ids ==
        std::vector<std::string>{"a", "a"});
  auto d = place(two, Strategy::kPack, {named("a", "lf001", 2), named("b", "lf002", 4)}, {"lf002", ""});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"b", "b"});
  // The pinned node has one GPU: the pinned bundle takes it, the other spills over.
  auto spill = place(two, Strategy::kPack, {named("a", "lf001", 2), named("b", "lf002", 1)}, {"b", ""});
  REQUIRE(spill.placed);
  CHECK(spill.node_ids == std::vector<std::string>{"b", "a"});
}

TEST_CASE("SPREAD with a pinned bundle puts the others on other nodes") {
  std::vector<ResourceSet> three = {{{"GPU", 1}}, {{"GPU", 1}}, {{"GPU", 1}}};
  // "a" is the emptiest node, yet holds only the pinned bundle.
  auto d = place(three, Strategy::kSpread, {named("a", "lf001", 8), named("b", "lf002", 1), named("c", "lf003", 1)},
                 {"", "lf001", ""});
  REQUIRE(d.placed);
  CHECK(d.node_ids[1] == "a");
  CHECK(distinct(d.node_ids).size() == 3);
}

TEST_CASE("STRICT_PACK with a pinned bundle uses only the pinned node, or says why not") {
  std::vector<ResourceSet> two = {{{"GPU", 1}}, {{"GPU", 1}}};
  auto d = place(two, Strategy::kStrictPack, {named("a", "lf001", 2), named("b", "lf002", 8)}, {"a", ""});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"a", "a"});
  auto small = place(two, Strategy::kStrictPack, {named("a", "lf001", 1), named("b", "lf002", 8)}, {"a", ""});
  CHECK_FALSE(small.placed);
  CHECK(small.infeasible);
  CHECK(small.reason.find("STRICT_PACK") != std::string::npos);
  CHECK(small.reason.find("lf001 (a)") != std::string::npos);
  auto split = place(two, Strategy::kStrictPack, {named("a", "lf001", 2), named("b", "lf002", 8)}, {"a", "b"});
  CHECK_FALSE(split.placed);
  CHECK(split.infeasible);
  CHECK(split.reason.find("different nodes") != std::string::npos);
}

TEST_CASE("STRICT_SPREAD with a pinned bundle keeps the others off its node; two pins on one node never fit") {
  std::vector<ResourceSet> two = {{{"GPU", 1}}, {{"GPU", 1}}};
  auto d = place(two, Strategy::kStrictSpread, {named("a", "lf001", 4), named("b", "lf002", 4)}, {"", "a"});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"b", "a"});
  // Only the pinned node is alive: the other bundle has nowhere to go.
  auto alone = place(two, Strategy::kStrictSpread, {named("a", "lf001", 4)}, {"a", ""});
  CHECK_FALSE(alone.placed);
  CHECK(alone.infeasible);
  auto same = place(two, Strategy::kStrictSpread, {named("a", "lf001", 4), named("b", "lf002", 4)}, {"a", "lf001"});
  CHECK_FALSE(same.placed);
  CHECK(same.infeasible);
  CHECK(same.reason.find("bundles 0 and 1 are pinned to the same node lf001 (a)") != std::string::npos);
}

TEST_CASE("a pin to a full node waits with a reason naming it; more than it has in total is infeasible") {
  NodeCapacity a = named("a", "lf001", 2);
  a.available["GPU"] = 0;  // both GPUs granted to another engine
  for (Strategy s : {Strategy::kPack, Strategy::kSpread, Strategy::kStrictPack, Strategy::kStrictSpread}) {
    CAPTURE(strategy_name(s));
    auto d = place({{{"GPU", 1}}, {{"GPU", 1}}}, s, {a, named("b", "lf002", 4)}, {"lf001", ""});
    CHECK_FALSE(d.placed);
    CHECK_FALSE(d.infeasible);
    CHECK(d.reason == "bundle 0 is pinned to node lf001 (a), which has {GPU: 0} available, not {GPU: 1}");
  }
  auto never = place({{{"GPU", 3}}}, Strategy::kPack, {named("a", "lf001", 2), named("b", "lf002", 4)}, {"a"});
  CHECK_FALSE(never.placed);
  CHECK(never.infeasible);
  CHECK(never.reason.find("pinned to node lf001 (a), which has {GPU: 2} in total, not {GPU: 3}") != std::string::npos);
}

TEST_CASE("a pin to an unknown node, or to a name two nodes share, is refused with a reason") {
  auto d = place({{{"GPU", 1}}}, Strategy::kPack, {named("a", "lf001", 2)}, {"lf009"});
  CHECK_FALSE(d.placed);
  CHECK(d.reason == "bundle 0 is pinned to node \"lf009\", which is not an alive node of the cluster");
  auto twice = place({{{"GPU", 1}}}, Strategy::kPack, {named("a", "lf001", 2), named("b", "lf001", 2)}, {"lf001"});
  CHECK_FALSE(twice.placed);
  CHECK(twice.infeasible);
  CHECK(twice.reason.find("pin it by node id") != std::string::npos);
  // An id wins over a name.
  auto by_id = place({{{"GPU", 1}}}, Strategy::kPack, {named("a", "lf001", 2), named("b", "lf001", 2)}, {"b"});
  REQUIRE(by_id.placed);
  CHECK(by_id.node_ids[0] == "b");
  CHECK_FALSE(place({{{"GPU", 1}}}, Strategy::kPack, {node("a", 1)}, {"a", "a"}).placed);  // one pin per bundle
}

TEST_CASE("place_missing sends a lost pinned bundle back to its own node only") {
  std::vector<ResourceSet> two = {{{"GPU", 1}}, {{"GPU", 1}}};
  auto b = named("b", "lf002", 1);
  b.available["GPU"] = 0;  // runs the kept bundle 1
  auto d = place_missing(two, Strategy::kPack, {named("a", "lf001", 1), b, named("c", "lf003", 8)}, {"", "b"},
                         {"lf001", ""});
  REQUIRE(d.placed);
  CHECK(d.node_ids == std::vector<std::string>{"a", "b"});
  auto gone = place_missing(two, Strategy::kPack, {b, named("c", "lf003", 8)}, {"", "b"}, {"lf001", ""});
  CHECK_FALSE(gone.placed);
  CHECK(gone.reason.find("not an alive node") != std::string::npos);
}
