#include "runtime/remote/bundle.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "common/file_digest.h"

namespace llmctl::remote {

namespace fs = std::filesystem;

std::uint64_t Bundle::total_size() const {
  std::uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  return total;
}

Result<Bundle> bundle_of(const std::string& binary) {
  Bundle b;
  auto add = [&b](const fs::path& path, std::string relative, bool executable) -> Status {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec) return Status::io_error(fmt::format("bundle file {}: {}", path.string(), ec.message()));
    ASSIGN_OR_RETURN(std::string sha, sha256_file(path.string()));
    b.files.push_back({std::move(relative), path.string(), size, std::move(sha), executable});
    return Status::ok();
  };
  RETURN_IF_ERROR(add(binary, "llmctl", true));
  // A bundle's lib/ (packaging/bundle.sh): the binary's RPATH is $ORIGIN/lib,
  // so the libraries must land in lib/ beside it on the host too.
  fs::path lib = fs::path(binary).parent_path() / "lib";
  std::error_code ec;
  if (fs::is_directory(lib, ec)) {
    std::vector<fs::path> libs;
    for (const auto& entry : fs::directory_iterator(lib, ec))
      if (entry.is_regular_file()) libs.push_back(entry.path());
    std::sort(libs.begin(), libs.end());
    for (const auto& p : libs) RETURN_IF_ERROR(add(p, "lib/" + p.filename().string(), false));
  }
  return b;
}

Result<Bundle> local_bundle() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Status::io_error(fmt::format("cannot find this binary (/proc/self/exe): {}", ec.message()));
  return bundle_of(self.string());
}

}  // namespace llmctl::remote
