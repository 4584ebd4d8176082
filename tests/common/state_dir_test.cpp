#include <doctest/doctest.h>

#include <cstdlib>

#include "common/state_dir.h"

namespace llmctl {
namespace {

TEST_CASE("LLMCTL_STATE_DIR overrides the default state dir") {
  setenv("LLMCTL_STATE_DIR", "/tmp/llmctl-test-state", 1);
  CHECK(default_state_dir() == "/tmp/llmctl-test-state");
  unsetenv("LLMCTL_STATE_DIR");
  CHECK(default_state_dir() != "/tmp/llmctl-test-state");
}

TEST_CASE("expand_user replaces a leading tilde only") {
  setenv("HOME", "/home/alice", 1);
  CHECK(expand_user("~/.ssh/id_ed25519") == "/home/alice/.ssh/id_ed25519");
  CHECK(expand_user("~") == "/home/alice");
  CHECK(expand_user("/opt/~x") == "/opt/~x");
}

}  // namespace
}  // namespace llmctl
