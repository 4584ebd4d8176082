// Where the ranks of a group find each other: a key/value store with a
// blocking get, which Gloo's and NCCL's bootstraps both need. Without a
// cluster the ranks of one node share a directory; in a cluster the head's
// KV store serves (control::ControlClient kv.put / kv.get).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"

namespace llmctl::dist {

class RendezvousStore {
 public:
  virtual ~RendezvousStore() = default;
  virtual Status set(const std::string& key, const std::string& value) = 0;
  // Waits until `key` is set; DEADLINE_EXCEEDED naming the key after `timeout`.
  virtual Result<std::string> get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  // Where this store lives, for error messages ("file store /tmp/x", "head 10.0.0.1:6379").
  virtual std::string describe() const = 0;
};

// A store in a directory all ranks can reach (one node): one file per key,
// written atomically (write + rename) so a reader never sees half a value.
Result<std::unique_ptr<RendezvousStore>> open_file_store(const std::string& dir);

}  // namespace llmctl::dist
