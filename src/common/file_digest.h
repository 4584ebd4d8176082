// Content checksums of files, as `sha256sum` prints them: what `up` compares
// before uploading the bundle and what the doctor compares between nodes'
// copies of a model folder.
#pragma once

#include <string>

#include "common/status.h"

namespace llmctl {

// Lowercase hex SHA-256 of the file's bytes, read in 1 MiB pieces; IO_ERROR
// naming the file when it cannot be opened or read.
Result<std::string> sha256_file(const std::string& path);

}  // namespace llmctl
