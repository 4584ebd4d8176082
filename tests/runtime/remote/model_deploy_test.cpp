// How `up` decides and acts on the [[models]] of cluster.toml, run for real
// through /bin/sh on this machine (the commands SSH runs on the head): the
// probe finds a serve's pid and command, plan_models keeps, restarts, starts,
// stops and refuses, the stop script ends the process, and http_status reads
// a status line (or says nothing answered).
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "runtime/remote/host_probe.h"
#include "runtime/remote/model_deploy.h"
#include "runtime/remote/ssh_session.h"
#include "shell_fixture.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace llmctl;
using namespace llmctl::remote;

namespace {

using testing::sh;
using testing::write_file;

struct TempDir : testing::TempDir {
  TempDir() : testing::TempDir("models") {}
};

// A process whose command line reads like a serve's ("... serve ...").
pid_t spawn_fake_serve() {
  const char* argv[] = {"sh", "-c", "sleep 30", "sh", "serve", nullptr};
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  return pid;
}

ClusterConfig cluster(const fs::path& state) {
  ClusterConfig c;
  c.head.host = "lf001";
  c.head.state_dir = state.string();
  c.head.install_dir = "/opt/llmctl";
  ModelConfig a;
  a.name = "a";
  a.path = "/models/a";
  c.models.push_back(a);
  return c;
}

}  // namespace

TEST_CASE("a running serve with the same command is kept; changed settings restart it; a dropped one stops") {
  TempDir tmp;
  fs::path state = tmp.path / "state";
  ClusterConfig c = cluster(state);
  std::string command = serve_command(c, c.head, c.models[0], 8000, "10.0.0.1:6379");
  CHECK(command.find("'/opt/llmctl'/llmctl --state-dir") == 0);
  CHECK(command.find(" serve --model '/models/a' --served-model-name 'a' --tp 1 --address '10.0.0.1:6379' "
                     "--host 0.0.0.0 --port 8000 --max-model-len 4096 "
                     "--gpu-memory-utilization 0.9 --device auto") != std::string::npos);
  pid_t pid = spawn_fake_serve();
  write_file(state / "serve" / "a.pid", std::to_string(pid) + "\n");
  write_file(state / "serve" / "a.cmd", command + "\n");
  write_file(state / "serve" / "gone.pid", "999999999\n");
  write_file(state / "serve" / "old.pid", std::to_string(pid) + "\n");

  auto facts = parse_probe_output(sh(probe_command((tmp.path / "bin").string(), state.string())));
  REQUIRE(facts.is_ok());
  REQUIRE(facts->served.count("a") == 1);
  CHECK(facts->served["a"].pid == pid);
  CHECK(facts->served["a"].command == command);
  CHECK(facts->served["a"].exe_sha256.size() == 64);
  CHECK(facts->served["gone"].pid == 0);

  std::string sha = facts->served["a"].exe_sha256;
  auto plans = plan_models(c, c.head, "10.0.0.1:6379", *facts, sha, false);
  REQUIRE(plans.size() == 3);
  CHECK(plans[0].action == "running");
  CHECK(plans[0].port == 8000);
  CHECK(plans[1].model.name == "gone");  // not in the file, not running: cleaned up
  CHECK(plans[1].action == "stop");
  CHECK(plans[2].model.name == "old");
  CHECK(plans[2].pid == pid);

  // Another binary, then another setting, then a second model after it on api + 1.
  CHECK(plan_models(c, c.head, "10.0.0.1:6379", *facts, std::string(64, '0'), false)[0].reason ==
        "it runs another llmctl than this one");
  ClusterConfig changed = c;
  changed.models[0].max_num_seqs = 8;
  ModelConfig b;
  b.name = "b";
  b.path = "/models/b";
  b.tp = 2;
  changed.models.push_back(b);
  plans = plan_models(changed, c.head, "10.0.0.1:6379", *facts, sha, false);
  CHECK(plans[0].action == "restart");
  CHECK(plans[0].reason == "its settings in the file changed");
  // Given in the file, max_num_seqs reaches serve; left out (above), serve picks it for its GPU.
  CHECK(plans[0].command.find(" --port 8000 --max-num-seqs 8 --max-model-len 4096 ") != std::string::npos);
  CHECK(command.find("--max-num-seqs") == std::string::npos);
  CHECK(plans[1].action == "start");
  CHECK(plans[1].port == 8001);
  CHECK(plans[1].command.find(" --tp 2 ") != std::string::npos);
  CHECK(plans[1].command.find(" --restart") != std::string::npos);
  CHECK(plans[1].command.find("--load-format") == std::string::npos);
  ClusterConfig random_weights = c;
  random_weights.models[0].load_format = "dummy";
  plans = plan_models(random_weights, c.head, "10.0.0.1:6379", *facts, sha, false);
  CHECK(plans[0].action == "restart");  // another serve command line
  CHECK(plans[0].command.find(" --load-format 'dummy'") != std::string::npos);

  // The stop script: SIGTERM ends it, its files go.
  std::string out = sh(stop_serve_script(c.head, {"a", "gone"}, 5));
  int status = 0;
  CHECK(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(out == "stopped a " + std::to_string(pid) + "\n");
  CHECK(!fs::exists(state / "serve" / "a.pid"));
  CHECK(!fs::exists(state / "serve" / "a.cmd"));
  CHECK(!fs::exists(state / "serve" / "gone.pid"));
  // The pid now names no serve: "old" is not reported running.
  facts = parse_probe_output(sh(probe_command((tmp.path / "bin").string(), state.string())));
  REQUIRE(facts.is_ok());
  CHECK(facts->served["old"].pid == 0);
}

TEST_CASE("pp and replicas above 1 are refused, saying what is unsupported") {
  ModelConfig m;
  m.name = "q";
  m.pp = 2;
  m.replicas = 3;
  CHECK(unsupported_reason(m) ==
        "pipeline parallel (pp = 2) is not supported yet; use pp = 1; replicas = 3 is not supported yet (one serve "
        "per model); use replicas = 1");
  m.pp = m.replicas = 1;
  CHECK(unsupported_reason(m).empty());
  m.name = "../x";
  CHECK(unsupported_reason(m).find("must be letters, digits") != std::string::npos);
}

TEST_CASE("http_status reads the status line, and is 0 when nothing answers") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  std::string request;
  std::thread server([&] {
    int c = ::accept(fd, nullptr, nullptr);
    char buf[1024];
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n > 0) request.assign(buf, static_cast<size_t>(n));
    std::string reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(c);
  });
  CHECK(http_status("127.0.0.1", port, "/health", 5) == 503);
  server.join();
  CHECK(request.rfind("GET /health HTTP/1.1\r\n", 0) == 0);
  ::close(fd);
  CHECK(http_status("127.0.0.1", port, "/health", 1) == 0);  // closed now: refused
}
