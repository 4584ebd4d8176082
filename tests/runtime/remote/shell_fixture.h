// What remote_test's files share: run a command line through /bin/sh as a
// host would, write a file, and a scratch directory removed afterwards.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "runtime/remote/ssh_session.h"

namespace llmctl::remote::testing {

// The command's stdout, run by /bin/sh -c like a command over SSH.
inline std::string sh(const std::string& command) {
  std::FILE* p = ::popen(("/bin/sh -c " + shell_quote(command)).c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

inline void write_file(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// /tmp/llmctl-<what>-XXXXXX, removed with its contents at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& what) {
    std::string tmpl = "/tmp/llmctl-" + what + "-XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace llmctl::remote::testing
