#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "common/logging.h"

namespace llmctl {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("component loggers write time in ms, level, component, node and pid to the state-dir file") {
  std::string dir = "/tmp/llmctl-logging-test-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  LogOptions options;
  options.node_name = "lf002";
  options.file_path = dir + "/logs/agent.log";
  options.level = "info";
  options.to_stderr = false;
  init_logging(options);

  auto agent = logger("agent");
  agent->info("joined head {}", "10.0.0.1:6379");
  agent->debug("below the level: not written");
  logger("head")->warn("node {} missed 5 heartbeats", "n1");
  agent->flush();
  logger("head")->flush();

  std::string text = read_all(options.file_path);
  std::regex info_line(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info +\[agent\] node=lf002 pid=\d+ joined head 10\.0\.0\.1:6379)");
  std::regex warn_line(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} warn(ing)? +\[head\] node=lf002 pid=\d+ node n1 missed 5 heartbeats)");
  CHECK_MESSAGE(std::regex_search(text, info_line), text);
  CHECK_MESSAGE(std::regex_search(text, warn_line), text);
  CHECK(text.find("below the level") == std::string::npos);
  CHECK(logger("agent").get() == agent.get());  // one logger per component
  std::filesystem::remove_all(dir);
}

TEST_CASE("a quiet stderr (--log-level warn) still leaves info lines in the file that `llmctl logs` searches") {
  std::string dir = "/tmp/llmctl-logging-test-quiet-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  LogOptions options;
  options.file_path = dir + "/logs/head.log";
  options.level = "warn";
  init_logging(options);
  logger("head")->info("head listening on {}", "0.0.0.0:6379");
  logger("head")->debug("debug stays out");
  logger("head")->flush();
  std::string text = read_all(options.file_path);
  CHECK_MESSAGE(text.find("head listening on 0.0.0.0:6379") != std::string::npos, text);
  CHECK(text.find("debug stays out") == std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmctl
