// The C boundary around Debian's libgloo.so. llmctl links libstdc++ and
// libgcc statically while libgloo.so uses the shared ones, and an exception
// cannot cross between the two runtimes: Gloo's IoException would reach our
// catch as std::terminate. So everything that touches Gloo lives in one small
// shared library (libllmctl_gloo.so, shared runtime like libgloo.so) that
// catches every exception itself and reports it as a return code and a
// message; only C types cross this header.
#pragma once

#include <stddef.h>

#define LLMCTL_GLOO_API __attribute__((visibility("default")))

extern "C" {

// Return codes of every call below.
enum {
  kLlmctlGlooOk = 0,
  kLlmctlGlooError = 1,       // Gloo failed; `err` holds its message
  kLlmctlGlooStoreError = 2,  // a store callback failed; the caller kept why
};

// The rendezvous store, as callbacks into the caller; each returns 0 on
// success. get() hands the value to `sink`, which copies it.
struct LlmctlGlooStore {
  void* ctx;
  int (*set)(void* ctx, const char* key, const char* data, size_t size);
  int (*get)(void* ctx, const char* key, long long timeout_ms, void (*sink)(void* sink_ctx, const char*, size_t),
             void* sink_ctx);
};

struct LlmctlGlooGroup;

// Binds a TCP device to `address` and connects the full mesh through
// `store`, keys prefixed with `key_prefix`. `timeout_ms` bounds every later
// transfer; `store_timeout_ms` each store wait.
LLMCTL_GLOO_API int llmctl_gloo_connect(int rank, int size, const char* address, const char* key_prefix, long long timeout_ms,
                        long long store_timeout_ms, const LlmctlGlooStore* store, LlmctlGlooGroup** group,
                        char* err, size_t err_size);
// data[0..count) := the sum over ranks.
LLMCTL_GLOO_API int llmctl_gloo_all_reduce_sum_f32(LlmctlGlooGroup* group, float* data, int count, char* err, size_t err_size);
// out[r * count + i] := rank r's in[i].
LLMCTL_GLOO_API int llmctl_gloo_all_gather_f32(LlmctlGlooGroup* group, const float* in, float* out, int count, char* err,
                               size_t err_size);
// Root's data[0..size) to every rank.
LLMCTL_GLOO_API int llmctl_gloo_broadcast(LlmctlGlooGroup* group, void* data, size_t size, int root, char* err, size_t err_size);
LLMCTL_GLOO_API int llmctl_gloo_barrier(LlmctlGlooGroup* group, char* err, size_t err_size);
// Closes the sockets (peers blocked on us notice at once) and frees.
LLMCTL_GLOO_API void llmctl_gloo_close(LlmctlGlooGroup* group);

}  // extern "C"
