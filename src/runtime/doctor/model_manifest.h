// ModelManifest: the files of a model folder (relative paths, sizes and, for
// --deep, SHA-256), so nodes can compare what each will load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::doctor {

struct ManifestEntry {
  std::string path;   // relative to the folder, '/'-separated
  std::uint64_t size_bytes = 0;
  std::string sha256;  // lowercase hex; empty unless checksums were asked for
};

struct ModelManifest {
  std::vector<ManifestEntry> files;  // sorted by path

  nlohmann::json to_json() const;
  static ModelManifest from_json(const nlohmann::json& j);
};

// NOT_FOUND when `folder` is not a directory. Follows symlinks (HF caches use them).
Result<ModelManifest> build_model_manifest(const std::string& folder, bool with_checksums);

// Human-readable differences of `other` against `reference` (empty when equal):
// "missing config.json; model.safetensors is 10 bytes, here 12; extra foo.bin".
std::vector<std::string> diff_manifests(const ModelManifest& reference, const ModelManifest& other);

}  // namespace llmctl::doctor
