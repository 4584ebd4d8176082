// A RendezvousStore in the cluster head's KV store, for ranks on different
// nodes: set is kv.put, get is kv.wait (the head answers as soon as the key
// is put, or with DEADLINE_EXCEEDED at the time-out). Values are stored
// hex-encoded, since Gloo's and NCCL's bootstrap values are raw bytes and the
// control protocol carries JSON strings.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::dist {

struct HeadStoreOptions {
  std::string address;  // HEAD:PORT
  std::string token;    // the cluster token
  std::string tls_ca;   // the head's CA (PEM) when it speaks TLS; empty: plain
  std::chrono::milliseconds connect_timeout{5000};
  // Keys live under this prefix in the head's KV (`llmctl` tools list them).
  std::string key_prefix = "dist/";
};

// Connects once; the store keeps the connection. UNAVAILABLE / PERMISSION_DENIED
// name the head. Safe to use from one thread at a time.
Result<std::unique_ptr<RendezvousStore>> open_head_store(const HeadStoreOptions& options);

}  // namespace llmctl::dist
