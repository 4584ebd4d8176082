// Where the demo model that `llmctl serve` uses without --model lives:
//   1. <dir of the binary>/../share/llmctl/models/demo (installed, .deb)
//   2. <source tree>/models/demo (the path compiled in; a build dir binary)
// NOT_FOUND naming both when neither has a config.json.
#pragma once

#include <string>

#include "common/status.h"

namespace llmctl::server {

Result<std::string> find_demo_model();

}  // namespace llmctl::server
