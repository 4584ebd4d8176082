// The files `llmctl up` ships to a host: this binary, plus the lib/ folder
// beside it when it runs from a bundle made by packaging/bundle.sh. Each file
// carries its SHA-256, so a host that already has identical bytes is skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace llmctl::remote {

struct BundleFile {
  std::string relative_path;  // "llmctl", "lib/libssh.so.4"
  std::string local_path;
  std::uint64_t size = 0;
  std::string sha256;         // lowercase hex, as sha256sum prints it
  bool executable = false;
};

struct Bundle {
  std::vector<BundleFile> files;  // "llmctl" first
  std::uint64_t total_size() const;
};

// The bundle of the running binary (/proc/self/exe).
Result<Bundle> local_bundle();

// The bundle rooted at `binary` (tests, and `up` from a bundle's copy).
Result<Bundle> bundle_of(const std::string& binary);

}  // namespace llmctl::remote
