// up's host probe run for real through /bin/sh on this machine (the same
// command SSH runs on a host), checked against what this process knows
// independently: its own pid in a pid file, a socket it listens on, the
// SHA-256 of files it wrote (published test vectors), free disk from statvfs.
// Also the bundle's layout and remote_path's quoting.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "common/file_digest.h"
#include "runtime/remote/bundle.h"
#include "runtime/remote/host_probe.h"
#include "runtime/remote/ssh_session.h"
#include "shell_fixture.h"

namespace fs = std::filesystem;
using namespace llmctl::remote;
using llmctl::sha256_file;

namespace {

using testing::sh;
using testing::write_file;

struct TempDir : testing::TempDir {
  TempDir() : testing::TempDir("probe") {}
};

// SHA-256 test vectors (FIPS 180-2).
constexpr const char* kShaAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kShaEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

TEST_CASE("the probe reports pids, installed hashes, disk and listening ports") {
  TempDir tmp;
  fs::path install = tmp.path / "with space" / "bin", state = tmp.path / "state";
  write_file(install / "llmctl", "abc");
  write_file(install / "lib" / "libx.so.1", "");
  write_file(state / "agent.pid", std::to_string(::getpid()) + "\n");
  write_file(state / "head.pid", "999999999\n");  // no such process
  write_file(state / "cluster.json", "{\n  \"address\": \"10.0.0.1:6379\",\n  \"token\": \"t0k\"\n}\n");
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);

  auto facts = parse_probe_output(sh(probe_command(install.string(), state.string())));
  ::close(fd);
  REQUIRE(facts.is_ok());
  CHECK(facts->os_arch == local_os_arch());
  CHECK(facts->agent_pid == ::getpid());
  CHECK(facts->head_pid == 0);
  // What the "agent" (this test) executes, read through /proc/PID/exe: how up spots a daemon on an old binary.
  auto self_sha = sha256_file("/proc/self/exe");
  REQUIRE(self_sha.is_ok());
  CHECK(facts->agent_exe_sha256 == *self_sha);
  CHECK(facts->head_exe_sha256.empty());
  CHECK(facts->sha256.size() == 2);
  CHECK(facts->sha256["llmctl"] == kShaAbc);
  CHECK(facts->sha256["lib/libx.so.1"] == kShaEmpty);
  CHECK(facts->cluster_json.find("\"token\": \"t0k\"") != std::string::npos);
  CHECK(facts->listening_ports.count(port) == 1);
  CHECK(facts->disk_path == install.string());
  struct statvfs vfs{};
  REQUIRE(::statvfs(install.c_str(), &vfs) == 0);
  double free_bytes = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
  // Other writers on this disk move it a little between the two looks.
  CHECK(static_cast<double>(facts->free_bytes) == doctest::Approx(free_bytes).epsilon(0.05));
}

TEST_CASE("a missing install dir: disk measured at its nearest existing parent, nothing installed, no daemons") {
  TempDir tmp;
  auto facts = parse_probe_output(sh(probe_command((tmp.path / "a" / "b" / "c").string(), (tmp.path / "nope").string())));
  REQUIRE(facts.is_ok());
  CHECK(facts->disk_path == tmp.path.string());
  CHECK(facts->free_bytes > 0);
  CHECK(facts->sha256.empty());
  CHECK(facts->head_pid == 0);
  CHECK(facts->agent_pid == 0);
  CHECK(facts->cluster_json.empty());
}

TEST_CASE("remote_path expands ~ through $HOME and quotes everything else") {
  CHECK(sh("HOME=/h/o; printf %s " + remote_path("~/.llmctl/it's")) == "/h/o/.llmctl/it's");
  CHECK(sh("printf %s " + remote_path("/a b/$x`y`")) == "/a b/$x`y`");
  CHECK(sh("HOME=/h; printf %s " + remote_path("~")) == "/h");
}

TEST_CASE("probe output without the uname line is an error, not empty facts") {
  auto facts = parse_probe_output("bash: llmctl: command not found\n");
  CHECK_FALSE(facts.is_ok());
}

TEST_CASE("a bundle is the binary plus the lib/ beside it, each with its SHA-256") {
  TempDir tmp;
  write_file(tmp.path / "llmctl", "abc");
  CHECK(sha256_file((tmp.path / "llmctl").string()).value() == kShaAbc);
  auto alone = bundle_of((tmp.path / "llmctl").string());
  REQUIRE(alone.is_ok());
  REQUIRE(alone->files.size() == 1);
  CHECK(alone->files[0].relative_path == "llmctl");
  CHECK(alone->files[0].executable);
  write_file(tmp.path / "lib" / "libb.so.2", "");
  write_file(tmp.path / "lib" / "liba.so.1", "abc");
  auto bundled = bundle_of((tmp.path / "llmctl").string());
  REQUIRE(bundled.is_ok());
  REQUIRE(bundled->files.size() == 3);
  CHECK(bundled->files[1].relative_path == "lib/liba.so.1");
  CHECK(bundled->files[1].sha256 == kShaAbc);
  CHECK(bundled->files[2].relative_path == "lib/libb.so.2");
  CHECK(bundled->files[2].sha256 == kShaEmpty);
  CHECK(bundled->total_size() == 6);
  CHECK_FALSE(bundle_of((tmp.path / "missing").string()).is_ok());
}
