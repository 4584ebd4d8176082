// The head in-process: real sockets and channels, a FakeClock for the
// failure detector, the io_context stepped by the test.
#include "runtime/control/head.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include <doctest/doctest.h>

using namespace llmctl;
using namespace llmctl::control;
using namespace std::chrono_literals;

namespace {

template <typename Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(2ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

struct FakeAgent {
  std::shared_ptr<transport::Channel> channel;
  std::vector<transport::Message> pushes;
};

struct Fixture {
  asio::io_context io;
  FakeClock clock;
  std::string dir;
  std::unique_ptr<Head> head;
  std::uint16_t port = 0;

  Fixture() {
    dir = std::filesystem::temp_directory_path() / ("llmctl-head-test-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(std::rand()));
    std::filesystem::remove_all(dir);
    start_head();
  }
  ~Fixture() {
    head.reset();
    std::filesystem::remove_all(dir);
  }
  void start_head() {
    HeadOptions o;
    o.state_dir = dir;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.token = "tok";
    o.heartbeat_period_ms = 200;
    o.num_missed_heartbeats = 5;
    o.recovery_grace_ms = 3000;
    head = std::make_unique<Head>(io, o, clock);
    auto p = head->start();
    REQUIRE(p.is_ok());
    port = *p;
  }
  std::shared_ptr<FakeAgent> connect() {
    auto a = std::make_shared<FakeAgent>();
    bool done = false;
    transport::Channel::async_connect(io, "127.0.0.1", port, "tok", {}, [&](Result<std::shared_ptr<transport::Channel>> r) {
      REQUIRE(r.is_ok());
      a->channel = *r;
      done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    a->channel->start([a](const transport::Message& m, std::uint64_t) { a->pushes.push_back(m); }, [](const Status&) {});
    return a;
  }
  Result<nlohmann::json> call(FakeAgent& a, const std::string& type, nlohmann::json body) {
    std::optional<Result<nlohmann::json>> out;
    a.channel->request(type, std::move(body), 10s, [&](Result<nlohmann::json> r) { out = std::move(r); });
    REQUIRE(run_until(io, [&] { return out.has_value(); }));
    return *out;
  }
  std::shared_ptr<FakeAgent> join(const std::string& id, double gpus) {
    auto a = connect();
    auto r = call(*a, "node.register",
                  {{"node_id", id}, {"name", "host-" + id}, {"address", "10.0.0." + id}, {"resources", {{"GPU", gpus}, {"CPU", 4}}}});
    REQUIRE(r.is_ok());
    return a;
  }
  std::string state_of(const std::string& id) {
    auto it = head->state().nodes.find(id);
    return it == head->state().nodes.end() ? "absent" : std::string(node_state_name(it->second.state));
  }
};

}  // namespace

TEST_CASE("nodes join Active and are Dead after five missed heartbeat periods of fake time") {
  Fixture f;
  auto a = f.join("1", 1);
  auto b = f.join("2", 1);
  CHECK(f.state_of("1") == "Active");
  for (int i = 0; i < 4; ++i) {
    f.clock.advance(200ms);
    b->channel->push("node.heartbeat", {{"usage", {{"cpu_percent", 1.0}}}});
    run_until(f.io, [] { return false; }, 20ms);  // let the head's ticks run
  }
  CHECK(f.state_of("1") == "Active");  // 800 ms: not yet
  f.clock.advance(200ms);
  b->channel->push("node.heartbeat", {});
  REQUIRE(run_until(f.io, [&] { return f.state_of("1") == "Dead"; }, 1000ms));
  CHECK(f.state_of("2") == "Active");
  CHECK(f.head->state().nodes.at("1").reason.find("missed heartbeats") != std::string::npos);
  REQUIRE_FALSE(f.head->state().failures.empty());
}

TEST_CASE("a graceful leave is Dead at once with reason stopped, and rejoining is the same node") {
  Fixture f;
  auto a = f.join("1", 1);
  REQUIRE(f.call(*a, "node.leave", {{"node_id", "1"}, {"reason", "stopped"}}).is_ok());
  CHECK(f.state_of("1") == "Dead");
  CHECK(f.head->state().nodes.at("1").reason == "stopped");
  CHECK(f.head->state().failures.empty());  // leaving is not a failure
  auto again = f.join("1", 1);
  CHECK(f.state_of("1") == "Active");
  CHECK(f.head->state().nodes.size() == 1);
}

TEST_CASE("KV: put, get, wait woken by a put, wait timing out, delete by prefix, no-overwrite") {
  Fixture f;
  auto c = f.connect();
  REQUIRE(f.call(*c, "kv.put", {{"key", "nccl/0"}, {"value", "addr0"}}).is_ok());
  auto got = f.call(*c, "kv.get", {{"key", "nccl/0"}});
  CHECK((*got)["value"] == "addr0");
  CHECK((*f.call(*c, "kv.get", {{"key", "nope"}}))["found"] == false);
  auto dup = f.call(*c, "kv.put", {{"key", "nccl/0"}, {"value", "other"}, {"overwrite", false}});
  CHECK(dup.status().code() == StatusCode::kAlreadyExists);

  auto waiter = f.connect();
  std::optional<Result<nlohmann::json>> waited;
  waiter->channel->request("kv.wait", {{"key", "nccl/1"}, {"timeout_ms", 5000}}, 10s,
                           [&](Result<nlohmann::json> r) { waited = std::move(r); });
  run_until(f.io, [] { return false; }, 30ms);
  CHECK_FALSE(waited.has_value());
  REQUIRE(f.call(*c, "kv.put", {{"key", "nccl/1"}, {"value", "addr1"}}).is_ok());
  REQUIRE(run_until(f.io, [&] { return waited.has_value(); }));
  CHECK((**waited)["value"] == "addr1");

  auto timeout = f.call(*c, "kv.wait", {{"key", "never"}, {"timeout_ms", 50}});
  CHECK(timeout.status().code() == StatusCode::kDeadlineExceeded);

  REQUIRE(f.call(*c, "kv.put", {{"key", "gloo/0"}, {"value", "g"}}).is_ok());
  CHECK((*f.call(*c, "kv.delete", {{"prefix", "nccl/"}}))["num_deleted"] == 2);
  CHECK((*f.call(*c, "kv.list", {{"prefix", ""}}))["keys"] == nlohmann::json::array({"gloo/0"}));
}

TEST_CASE("a restarted head recovers nodes and KV; recovered nodes get a grace period to re-attach") {
  Fixture f;
  auto a = f.join("1", 1);
  REQUIRE(f.call(*a, "kv.put", {{"key", "k"}, {"value", "v"}}).is_ok());
  a.reset();
  f.head.reset();  // "kill": nothing but the state dir survives
  f.start_head();
  CHECK(f.state_of("1") == "Active");
  CHECK(f.head->state().kv.at("k") == "v");
  f.clock.advance(2000ms);  // beyond the 1 s timeout, inside the 3 s grace
  run_until(f.io, [] { return false; }, 20ms);
  CHECK(f.state_of("1") == "Active");
  auto back = f.join("1", 1);  // the agent re-attaches
  f.clock.advance(900ms);
  back->channel->push("node.heartbeat", {});
  run_until(f.io, [] { return false; }, 20ms);
  CHECK(f.state_of("1") == "Active");
}

TEST_CASE("placement: SPREAD over 1-GPU nodes launches on two agents; impossible stays pending with a reason") {
  Fixture f;
  auto a = f.join("1", 1);
  auto b = f.join("2", 1);
  auto c = f.join("3", 1);
  auto client = f.connect();
  auto r = f.call(*client, "placement.submit",
                  {{"name", "tp2"}, {"strategy", "SPREAD"},
                   {"bundles", {{{"resources", {{"GPU", 1}}}, {"command", {"sleep", "1"}}},
                                {{"resources", {{"GPU", 1}}}, {"command", {"sleep", "1"}}}}}});
  REQUIRE(r.is_ok());
  CHECK((*r)["state"] == "placed");
  auto launched = [&] {
    int n = 0;
    for (auto* ag : {a.get(), b.get(), c.get()}) {
      for (const auto& m : ag->pushes) n += m.type == "bundle.launch";
    }
    return n;
  };
  REQUIRE(run_until(f.io, [&] { return launched() == 2; }));
  std::set<std::string> nodes;
  for (const auto& bundle : (*r)["bundles"]) nodes.insert(bundle["node_id"].get<std::string>());
  CHECK(nodes.size() == 2);

  nlohmann::json four = nlohmann::json::array();
  for (int i = 0; i < 4; ++i) four.push_back({{"resources", {{"GPU", 1}}}});
  auto big = f.call(*client, "placement.submit", {{"name", "too-big"}, {"strategy", "STRICT_SPREAD"}, {"bundles", four}});
  REQUIRE(big.is_ok());
  CHECK((*big)["state"] == "pending");
  auto status = f.head->status_json();
  REQUIRE(status["pending"].size() == 1);
  CHECK(status["pending"][0]["reason"].get<std::string>().find("STRICT_SPREAD") != std::string::npos);
  CHECK(status["resources"]["used"]["GPU"] == 2.0);
  CHECK(status["resources"]["total"]["GPU"] == 3.0);
}

TEST_CASE("a pending request is placed when a node joins") {
  Fixture f;
  auto a = f.join("1", 1);
  auto client = f.connect();
  auto r = f.call(*client, "placement.submit",
                  {{"strategy", "STRICT_SPREAD"}, {"bundles", {{{"resources", {{"GPU", 1}}}}, {{"resources", {{"GPU", 1}}}}}}});
  CHECK((*r)["state"] == "pending");
  auto b = f.join("2", 1);
  REQUIRE(run_until(f.io, [&] { return f.head->state().groups.begin()->second.state == "placed"; }));
}

TEST_CASE("bundles of a node that dies go back to pending and are placed again when a node can take them") {
  Fixture f;
  auto a = f.join("1", 1);
  auto b = f.join("2", 1);
  auto client = f.connect();
  auto r = f.call(*client, "placement.submit",
                  {{"name", "tp2"}, {"strategy", "STRICT_SPREAD"},
                   {"bundles", {{{"resources", {{"GPU", 1}}}, {"command", {"sleep", "1"}}},
                                {{"resources", {{"GPU", 1}}}, {"command", {"sleep", "1"}}}}}});
  REQUIRE(r.is_ok());
  REQUIRE((*r)["state"] == "placed");
  auto launches = [](const FakeAgent& ag) {
    std::vector<nlohmann::json> out;
    for (const auto& m : ag.pushes) {
      if (m.type == "bundle.launch") out.push_back(m.body);
    }
    return out;
  };
  REQUIRE(run_until(f.io, [&] { return launches(*a).size() == 1 && launches(*b).size() == 1; }));
  std::size_t lost_index = launches(*b)[0]["index"].get<std::size_t>();

  // Node 2 goes silent; node 1 keeps heartbeating.
  for (int i = 0; i < 6; ++i) {
    f.clock.advance(200ms);
    a->channel->push("node.heartbeat", {});
    run_until(f.io, [] { return false; }, 20ms);
  }
  REQUIRE(run_until(f.io, [&] { return f.state_of("2") == "Dead"; }));
  run_until(f.io, [] { return false; }, 20ms);  // the re-placement attempt it posts
  const auto& g = f.head->state().groups.begin()->second;
  CHECK(g.state == "placed");
  CHECK(g.bundles[lost_index].state == "pending");
  CHECK(g.bundles[lost_index].node_id.empty());
  CHECK(g.bundles[1 - lost_index].node_id == "1");
  auto status = f.head->status_json();
  REQUIRE(status["pending"].size() == 1);
  CHECK(status["pending"][0]["bundles"].size() == 1);
  CHECK(status["pending"][0]["reason"].get<std::string>().find("STRICT_SPREAD") != std::string::npos);
  CHECK(status["resources"]["used"]["GPU"] == 1.0);

  // A new node with a free GPU takes the lost bundle; the surviving one is not relaunched.
  auto c = f.join("3", 1);
  REQUIRE(run_until(f.io, [&] { return launches(*c).size() == 1; }));
  CHECK(launches(*c)[0]["index"] == lost_index);
  const auto& g2 = f.head->state().groups.begin()->second;
  CHECK(g2.bundles[lost_index].node_id == "3");
  CHECK(g2.bundles[lost_index].state == "starting");
  CHECK(launches(*a).size() == 1);
  CHECK(f.head->status_json()["pending"].empty());
  CHECK(f.head->status_json()["resources"]["used"]["GPU"] == 2.0);
}

namespace {

std::vector<nlohmann::json> launches_of(const FakeAgent& agent) {
  std::vector<nlohmann::json> out;
  for (const auto& m : agent.pushes) {
    if (m.type == "bundle.launch") out.push_back(m.body);
  }
  return out;
}

nlohmann::json one_gpu_bundle() { return {{{"resources", {{"GPU", 1}}}, {"command", {"sleep", "1"}}}}; }

std::vector<int> indices_of(const Head& head, const std::string& group_id, std::size_t bundle) {
  return head.state().groups.at(group_id).bundles.at(bundle).gpu_indices;
}

}  // namespace

TEST_CASE("GPU indices: two 1-GPU bundles on a 2-GPU node get 0 and 1, a freed index is reused, a restart keeps them") {
  Fixture f;
  auto a = f.join("1", 2);
  auto client = f.connect();
  auto g1 = f.call(*client, "placement.submit", {{"name", "one"}, {"bundles", one_gpu_bundle()}});
  auto g2 = f.call(*client, "placement.submit", {{"name", "two"}, {"bundles", one_gpu_bundle()}});
  REQUIRE(g1.is_ok());
  REQUIRE(g2.is_ok());
  CHECK((*g1)["bundles"][0]["gpu_indices"] == nlohmann::json::array({0}));
  CHECK((*g2)["bundles"][0]["gpu_indices"] == nlohmann::json::array({1}));
  REQUIRE(run_until(f.io, [&] { return launches_of(*a).size() == 2; }));
  std::set<nlohmann::json> sent;
  for (const auto& l : launches_of(*a)) sent.insert(l["gpu_indices"]);
  CHECK(sent == std::set<nlohmann::json>{nlohmann::json::array({0}), nlohmann::json::array({1})});

  // No GPU left: a third waits, and gets index 0 once the first group is removed.
  auto g3 = f.call(*client, "placement.submit", {{"name", "three"}, {"bundles", one_gpu_bundle()}});
  REQUIRE(g3.is_ok());
  CHECK((*g3)["state"] == "pending");
  CHECK((*g3)["bundles"][0]["gpu_indices"].empty());
  const std::string id1 = (*g1)["group_id"], id2 = (*g2)["group_id"], id3 = (*g3)["group_id"];
  REQUIRE(f.call(*client, "placement.remove", {{"group_id", id1}}).is_ok());
  REQUIRE(run_until(f.io, [&] { return f.head->state().groups.at(id3).state == "placed"; }));
  CHECK(indices_of(*f.head, id3, 0) == std::vector<int>{0});
  REQUIRE(run_until(f.io, [&] { return launches_of(*a).size() == 3; }));
  CHECK(launches_of(*a)[2]["gpu_indices"] == nlohmann::json::array({0}));
  CHECK(f.head->status_json()["groups"][1]["bundles"][0]["gpu_indices"] == nlohmann::json::array({0}));

  // The indices are in the state log: a restarted head has them, and hands out the next one right.
  client.reset();
  a.reset();
  f.head.reset();
  f.start_head();
  CHECK(indices_of(*f.head, id2, 0) == std::vector<int>{1});
  CHECK(indices_of(*f.head, id3, 0) == std::vector<int>{0});
  auto back = f.join("1", 2);
  auto again = f.connect();
  REQUIRE(f.call(*again, "placement.remove", {{"group_id", id2}}).is_ok());
  auto g4 = f.call(*again, "placement.submit", {{"name", "four"}, {"bundles", one_gpu_bundle()}});
  REQUIRE(g4.is_ok());
  CHECK((*g4)["bundles"][0]["gpu_indices"] == nlohmann::json::array({1}));
}

TEST_CASE("a pinned reservation is held on its node and never launched; fractional GPUs and bad pins are refused") {
  Fixture f;
  auto a = f.join("1", 2);
  auto b = f.join("2", 2);
  auto client = f.connect();
  nlohmann::json bundles = {{{"resources", {{"GPU", 1}}}, {"pinned_node", "host-2"}},
                            {{"resources", {{"GPU", 1}}}, {"command", {"sleep", "1"}}}};
  auto r = f.call(*client, "placement.submit", {{"name", "tp2"}, {"strategy", "PACK"}, {"bundles", bundles}});
  REQUIRE(r.is_ok());
  REQUIRE((*r)["state"] == "placed");
  const auto& placed = (*r)["bundles"];
  CHECK(placed[0]["node_id"] == "2");
  CHECK(placed[0]["state"] == "reserved");
  CHECK(placed[0]["pinned_node"] == "host-2");
  CHECK(placed[1]["node_id"] == "2");  // PACK: beside the pinned bundle
  CHECK(placed[1]["state"] == "starting");
  CHECK(placed[0]["gpu_indices"] == nlohmann::json::array({0}));
  CHECK(placed[1]["gpu_indices"] == nlohmann::json::array({1}));
  REQUIRE(run_until(f.io, [&] { return launches_of(*b).size() == 1; }));
  run_until(f.io, [] { return false; }, 30ms);
  CHECK(launches_of(*b).size() == 1);
  CHECK(launches_of(*b)[0]["index"] == 1);
  CHECK(launches_of(*a).empty());
  CHECK(f.head->status_json()["resources"]["used"]["GPU"] == 2.0);

  // Node 2 is full now: another bundle pinned there waits, saying why.
  auto full = f.call(*client, "placement.submit",
                     {{"bundles", {{{"resources", {{"GPU", 1}}}, {"pinned_node", "2"}}}}});
  REQUIRE(full.is_ok());
  CHECK((*full)["state"] == "pending");
  CHECK((*full)["reason"] == "bundle 0 is pinned to node host-2 (2), which has {GPU: 0} available, not {GPU: 1}");
  auto unknown = f.call(*client, "placement.submit",
                        {{"bundles", {{{"resources", {{"GPU", 1}}}, {"pinned_node", "host-9"}}}}});
  REQUIRE(unknown.is_ok());
  CHECK((*unknown)["reason"].get<std::string>().find("\"host-9\", which is not an alive node") != std::string::npos);

  auto half = f.call(*client, "placement.submit", {{"bundles", {{{"resources", {{"GPU", 0.5}}}}}}});
  REQUIRE_FALSE(half.is_ok());
  CHECK(half.status().code() == StatusCode::kInvalidArgument);
  CHECK(half.status().message().find("fractional GPUs are not supported yet") != std::string::npos);
  auto bad_pin = f.call(*client, "placement.submit", {{"bundles", {{{"resources", {{"CPU", 1}}}, {"pinned_node", 3}}}}});
  CHECK(bad_pin.status().code() == StatusCode::kInvalidArgument);
}
