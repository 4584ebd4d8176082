#include "runtime/doctor/model_manifest.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "common/file_digest.h"

namespace llmctl::doctor {

namespace fs = std::filesystem;

nlohmann::json ModelManifest::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& f : files) arr.push_back({{"path", f.path}, {"size", f.size_bytes}, {"sha256", f.sha256}});
  return {{"files", arr}};
}

ModelManifest ModelManifest::from_json(const nlohmann::json& j) {
  ModelManifest m;
  auto it = j.find("files");
  if (it == j.end() || !it->is_array()) return m;
  for (const auto& f : *it) {
    if (!f.is_object()) continue;
    ManifestEntry e;
    e.path = f.value("path", "");
    e.size_bytes = f.value("size", std::uint64_t{0});
    e.sha256 = f.value("sha256", "");
    m.files.push_back(std::move(e));
  }
  return m;
}

Result<ModelManifest> build_model_manifest(const std::string& folder, bool with_checksums) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return Status::not_found(fmt::format("{} is not a directory", folder));
  ModelManifest m;
  auto options = fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
  for (fs::recursive_directory_iterator it(folder, options, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    ManifestEntry e;
    e.path = fs::relative(it->path(), folder, ec).generic_string();
    e.size_bytes = it->file_size(ec);
    if (with_checksums) {
      auto sum = sha256_file(it->path().string());
      if (!sum.is_ok()) return sum.status();
      e.sha256 = *sum;
    }
    m.files.push_back(std::move(e));
  }
  if (ec) return Status::io_error(fmt::format("listing {}: {}", folder, ec.message()));
  std::sort(m.files.begin(), m.files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return m;
}

std::vector<std::string> diff_manifests(const ModelManifest& reference, const ModelManifest& other) {
  std::map<std::string, const ManifestEntry*> theirs;
  for (const auto& f : other.files) theirs[f.path] = &f;
  std::vector<std::string> out;
  for (const auto& f : reference.files) {
    auto it = theirs.find(f.path);
    if (it == theirs.end()) {
      out.push_back(fmt::format("missing {}", f.path));
      continue;
    }
    if (it->second->size_bytes != f.size_bytes) {
      out.push_back(fmt::format("{} is {} bytes, expected {}", f.path, it->second->size_bytes, f.size_bytes));
    } else if (!f.sha256.empty() && !it->second->sha256.empty() && f.sha256 != it->second->sha256) {
      out.push_back(fmt::format("{} has different content (sha256 {}..., expected {}...)", f.path,
                                it->second->sha256.substr(0, 12), f.sha256.substr(0, 12)));
    }
    theirs.erase(it);
  }
  for (const auto& [path, entry] : theirs) out.push_back(fmt::format("extra {}", path));
  return out;
}

}  // namespace llmctl::doctor
