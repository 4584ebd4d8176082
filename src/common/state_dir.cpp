#include "common/state_dir.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace llmctl {
namespace {

std::string home_dir() {
  if (const char* home = std::getenv("HOME"); home && *home) return home;
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/tmp";
}

}  // namespace

std::string default_state_dir() {
  if (const char* dir = std::getenv("LLMCTL_STATE_DIR"); dir && *dir) return dir;
  if (geteuid() == 0) return "/var/lib/llmctl";
  return home_dir() + "/.llmctl";
}

std::string expand_user(const std::string& path) {
  if (path == "~") return home_dir();
  if (path.rfind("~/", 0) == 0) return home_dir() + path.substr(1);
  return path;
}

}  // namespace llmctl
