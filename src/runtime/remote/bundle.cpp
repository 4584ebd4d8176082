#include "runtime/remote/bundle.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

namespace llmctl::remote {

namespace fs = std::filesystem;

std::uint64_t Bundle::total_size() const {
  std::uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  return total;
}

Result<std::string> sha256_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::io_error(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return Status::internal("cannot initialise SHA-256");
  std::vector<unsigned char> buf(1 << 20);
  for (;;) {
    size_t n = std::fread(buf.data(), 1, buf.size(), f);
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), n);
  }
  if (std::ferror(f)) return Status::io_error(fmt::format("reading {}: {}", path, std::strerror(errno)));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
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
