#include "runtime/server/demo_model.h"

#include <filesystem>
#include <system_error>

namespace llmctl::server {

Result<std::string> find_demo_model() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::string installed = ec ? std::string() : (exe.parent_path().parent_path() / "share/llmctl/models/demo").string();
  const std::string source = LLMCTL_DEMO_MODEL_SOURCE_DIR;
  for (const std::string& dir : {installed, source}) {
    if (!dir.empty() && fs::exists(fs::path(dir) / "config.json", ec)) return dir;
  }
  return Status::not_found("the demo model is in neither " + installed + " nor " + source +
                           "; pass --model DIR (a Hugging Face model folder)");
}

}  // namespace llmctl::server
