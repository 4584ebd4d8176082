#include <doctest/doctest.h>

#include <string>

#include "config/cluster_config.h"

namespace llmctl {
namespace {

std::string error_of(std::string_view text) {
  auto r = parse_cluster_config(text, "cluster.toml");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST_CASE("the seed's two-node file parses with every value") {
  auto r = load_cluster_config(std::string(LLMCTL_SOURCE_DIR) + "/configs/two-node.toml");
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  const ClusterConfig& c = *r;
  CHECK(c.name == "lf");
  CHECK(c.ports.head == 6379);
  CHECK(c.ports.node_range.first == 30000);
  CHECK(c.ports.node_range.last == 32000);
  CHECK(c.env.at("NCCL_SOCKET_IFNAME") == "eth0");
  CHECK(c.head.host == "lf001");
  CHECK(c.head.node_ip == "10.60.182.19");
  CHECK(c.head.num_gpus == 1);
  CHECK(c.head.resources.at("node:lf001") == 1.0);
  REQUIRE(c.workers.size() == 1);
  CHECK(c.workers[0].host == "lf002");
  REQUIRE(c.models.size() == 1);
  CHECK(c.models[0].tp == 2);
  CHECK(c.models[0].gpu_memory_utilization == doctest::Approx(0.75));
  CHECK(c.nodes().size() == 2);
}

TEST_CASE("only head.host is required; everything else has a default") {
  auto r = parse_cluster_config("[head]\nhost = \"a\"\n", "mini.toml");
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  CHECK(r->name == "mini");
  CHECK(r->ports.dashboard == 8265);
  CHECK(r->ports.client == 10001);
  CHECK(r->ports.api == 8000);
  CHECK(r->ssh.user == "root");
  CHECK(r->ssh.port == 22);
  CHECK_FALSE(r->head.num_gpus.has_value());
}

TEST_CASE("per-node ssh overrides merge over [ssh]") {
  auto r = parse_cluster_config(
      "[ssh]\nuser = \"llm\"\nport = 2200\n[head]\nhost = \"a\"\n"
      "[[workers]]\nhost = \"b\"\nssh = { port = 2222 }\n",
      "c.toml");
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  CHECK(r->head.ssh.port == 2200);
  CHECK(r->workers[0].ssh.user == "llm");
  CHECK(r->workers[0].ssh.port == 2222);
}

TEST_CASE("syntax errors name file, line and column") {
  std::string m = error_of("[head]\nhost = \"a\"\nnum_gpus = = 2\n");
  CHECK(m.find("cluster.toml:3:") == 0);
  CHECK(m.find("TOML syntax error") != std::string::npos);
}

TEST_CASE("wrong types name the key, its line and what was expected") {
  std::string m = error_of("[ports]\nhead = \"6379\"\n[head]\nhost = \"a\"\n");
  CHECK(m == "cluster.toml:2:8: ports.head: expected a port, got the string \"6379\"");
}

TEST_CASE("out-of-range values are errors") {
  CHECK(error_of("[ports]\napi = 70000\n[head]\nhost = \"a\"\n") ==
        "cluster.toml:2:7: ports.api: expected a port in 1..65535, got 70000");
  CHECK(error_of("[head]\nhost = \"a\"\nnum_gpus = 1\n[[models]]\npath = \"/m\"\ngpu_memory_utilization = 1.5\n")
            .find("models[0].gpu_memory_utilization: expected a number in (0, 1], got 1.5") != std::string::npos);
}

TEST_CASE("models.load_format: auto by default, dummy accepted and kept by to_toml, anything else refused") {
  auto plain = parse_cluster_config("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\n", "cluster.toml");
  REQUIRE_MESSAGE(plain.is_ok(), plain.status().message());
  CHECK(plain->models[0].load_format == "auto");
  CHECK(to_toml(*plain).find("load_format") == std::string::npos);
  auto dummy = parse_cluster_config("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\nload_format = \"dummy\"\n",
                                    "cluster.toml");
  REQUIRE_MESSAGE(dummy.is_ok(), dummy.status().message());
  CHECK(dummy->models[0].load_format == "dummy");
  auto again = parse_cluster_config(to_toml(*dummy), "roundtrip.toml");
  REQUIRE_MESSAGE(again.is_ok(), again.status().message());
  CHECK(again->models[0].load_format == "dummy");
  CHECK(error_of("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\nload_format = \"random\"\n") ==
        "cluster.toml:5:15: models[0].load_format: expected \"auto\" (the folder's safetensors) or \"dummy\" "
        "(random weights), got \"random\"");
}

TEST_CASE("models.max_num_seqs: left out, serve's device default (0, not written back); given, kept") {
  auto plain = parse_cluster_config("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\n", "cluster.toml");
  REQUIRE_MESSAGE(plain.is_ok(), plain.status().message());
  CHECK(plain->models[0].max_num_seqs == 0);
  CHECK(to_toml(*plain).find("max_num_seqs") == std::string::npos);
  auto given = parse_cluster_config("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\nmax_num_seqs = 64\n",
                                    "cluster.toml");
  REQUIRE_MESSAGE(given.is_ok(), given.status().message());
  CHECK(given->models[0].max_num_seqs == 64);
  auto again = parse_cluster_config(to_toml(*given), "roundtrip.toml");
  REQUIRE_MESSAGE(again.is_ok(), again.status().message());
  CHECK(again->models[0].max_num_seqs == 64);
  CHECK(error_of("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\nmax_num_seqs = 0\n").find("models[0].max_num_seqs") !=
        std::string::npos);
}

TEST_CASE("unknown keys suggest the closest known key") {
  std::string m = error_of("[head]\nhost = \"a\"\nnum_gpu = 1\n");
  CHECK(m == "cluster.toml:3:1: head.num_gpu: unknown key (did you mean 'num_gpus'?)");
  std::string top = error_of("[prots]\nhead = 1\n[head]\nhost = \"a\"\n");
  CHECK(top.find("cluster.toml:1:2: prots: unknown key (did you mean 'ports'?)") != std::string::npos);
}

TEST_CASE("missing head and missing head.host") {
  CHECK(error_of("[cluster]\nname = \"x\"\n").find("head: missing") != std::string::npos);
  CHECK(error_of("[head]\nnode_ip = \"10.0.0.1\"\n").find("head.host: missing") != std::string::npos);
}

TEST_CASE("node_range, node_ip and resources are checked") {
  CHECK(error_of("[ports]\nnode_range = \"32000-30000\"\n[head]\nhost = \"a\"\n").find("ports.node_range") !=
        std::string::npos);
  CHECK(error_of("[ports]\nnode_range = 30000\n[head]\nhost = \"a\"\n").find("expected a string like") !=
        std::string::npos);
  CHECK(error_of("[head]\nhost = \"a\"\nnode_ip = \"10.0.0.300\"\n") ==
        "cluster.toml: head.node_ip: expected an IPv4 or IPv6 address, got \"10.0.0.300\"");
  CHECK(error_of("[head]\nhost = \"a\"\nresources = { \"node:a\" = -1 }\n").find("non-negative") !=
        std::string::npos);
}

TEST_CASE("values that conflict with each other") {
  CHECK(error_of("[ports]\ndashboard = 6379\n[head]\nhost = \"a\"\n").find("four different ports") !=
        std::string::npos);
  CHECK(error_of("[ports]\napi = 31000\n[head]\nhost = \"a\"\n").find("ports.api: port 31000 lies inside") !=
        std::string::npos);
  CHECK(error_of("[head]\nhost = \"a\"\n[[workers]]\nhost = \"a\"\n").find("workers[0].host: \"a\" is listed more") !=
        std::string::npos);
  CHECK(error_of("[head]\nhost = \"a\"\nnum_gpus = 1\n[[workers]]\nhost = \"b\"\nnum_gpus = 1\n"
                 "[[models]]\npath = \"/m\"\ntp = 4\n")
            .find("needs tp*pp*replicas = 4*1*1 = 4 GPUs but the nodes list only 2") != std::string::npos);
  CHECK(error_of("[head]\nhost = \"a\"\n[[models]]\nname = \"m\"\npath = \"/a\"\n[[models]]\nname = \"m\"\npath = "
                 "\"/b\"\n")
            .find("models[1].name") != std::string::npos);
}

TEST_CASE("every problem in a file is reported at once") {
  std::string m = error_of("[ports]\nhead = \"x\"\napi = 0\n[head]\nhost = 5\n");
  CHECK(m.find("ports.head") != std::string::npos);
  CHECK(m.find("ports.api") != std::string::npos);
  CHECK(m.find("head.host") != std::string::npos);
}

TEST_CASE("to_toml round-trips the effective configuration") {
  auto r = load_cluster_config(std::string(LLMCTL_SOURCE_DIR) + "/configs/multi-model.toml");
  REQUIRE_MESSAGE(r.is_ok(), r.status().message());
  std::string text = to_toml(*r);
  auto again = parse_cluster_config(text, "roundtrip.toml");
  REQUIRE_MESSAGE(again.is_ok(), std::string(again.status().message() + "\n" + text));
  CHECK(again->workers.size() == 3);
  CHECK(again->workers[1].ssh.user == "admin");
  CHECK(again->workers[1].ssh.port == 2222);
  CHECK(again->models[1].replicas == 2);
  CHECK(again->env.at("NCCL_SOCKET_IFNAME") == "=ens5");
  CHECK(to_toml(*again).substr(to_toml(*again).find('\n')) == text.substr(text.find('\n')));
}

TEST_CASE("load_cluster_config reports missing files and directories") {
  auto missing = load_cluster_config("/nonexistent/cluster.toml");
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().message().find("/nonexistent/cluster.toml: cannot open") == 0);
  auto dir = load_cluster_config("/tmp");
  REQUIRE_FALSE(dir.is_ok());
  CHECK(dir.status().message().find("is a directory") != std::string::npos);
}

}  // namespace
}  // namespace llmctl
