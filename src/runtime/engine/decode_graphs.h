// Decode steps replayed as CUDA graphs, one per batch-size bucket
// (buckets_for: 1, 2, 4, ... 32, then every 32 up to max_num_seqs): at batch 64 an 8B step is ~400 kernel launches,
// and launching them one by one costs the host more than a small model's
// whole step on the GPU. A step of n decoding sequences runs as the graph of
// the smallest bucket B >= n, on inputs padded to B rows: padding rows decode
// token 0 at position 0 into a scratch KV block no sequence owns, and their
// logits are dropped.
//
// A graph replays fixed device pointers, so the inputs, logits and argmax ids
// live in buffers of the largest bucket's size, the block tables are always
// max_blocks wide, and each bucket's first step runs eagerly (sizing every
// scratch buffer the ops grow on demand) before it is captured.
//
// Only for a CUDA backend; everything else runs eagerly. Under tensor
// parallel every rank keeps its own graphs, with the NCCL collectives of the
// step captured on the group's stream: all ranks get the same batches, so
// they pick the same bucket and replay (or run eagerly) the same sequence of
// collectives. A graph captured on one rank while another replays is fine:
// capture runs nothing, and the replay that follows it issues the same
// collectives as any replay. Plain-greedy steps and the others replay
// different graphs when sharded (pairs of (maximum, index) vs the logits
// cross the group). Used on the engine thread only.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <memory>
#include <vector>

#include "common/status.h"
#include "kernels/kernels.h"
#include "runtime/engine/step_batch.h"
#include "runtime/model/decoder_model.h"

namespace llmctl::kernels {
class CudaGraph;
}

namespace llmctl::engine {

class DecodeGraphs {
 public:
  // scratch_block: a KV block index no sequence uses (padding rows write there).
  static Result<std::unique_ptr<DecodeGraphs>> create(kernels::Backend& backend, model::DecoderModel& model,
                                                      int32_t max_num_seqs, int32_t max_model_len,
                                                      int32_t block_size, int32_t scratch_block);
  ~DecodeGraphs();

  // Whether `b` is a step a graph can run: every sequence decodes one token
  // and samples, and there are at most max_num_seqs of them.
  bool accepts(const StepBatch& b) const;

  // Enqueues `b` (accepts(b) must hold) as its bucket's graph, capturing it
  // first when needed; a collective that fails while capturing is an error.
  // Under tensor parallel the caller then waits on the group (bounded),
  // before read() waits on the device without a time-out.
  Status launch(const StepBatch& b, const model::KvCacheView& kv);
  // The results of the last launch() of a batch of n sequences: with
  // greedy_ids, the argmax ids there and no logits; else logits [n, vocab]
  // on the host (a sharded model's joined). Without greedy_ids the batch
  // must not have been a greedy one of a sharded model.
  Result<std::vector<float>> read(int32_t n, std::vector<int32_t>* greedy_ids);

  // The last launch()'s logits on the device, [bucket, vocab] (one
  // process holding the whole vocabulary): sampling reads its first n rows.
  float* logits() const { return logits_ ? logits_->f32() : nullptr; }
  int64_t replays() const { return replays_; }

  // The batch sizes that get a graph, ascending, the last max_num_seqs.
  // Powers of two up to kBucketStep, then multiples of it: a batch pads to
  // at most kBucketStep - 1 rows, where powers of two would pad 513 to
  // 1,024 (at large batches a padding row costs its GEMM and lm_head share).
  // Graphs are captured on first use, so unused buckets cost nothing.
  static constexpr int32_t kBucketStep = 32;
  static std::vector<int32_t> buckets_for(int32_t max_num_seqs);
  int64_t captures() const { return static_cast<int64_t>(graphs_.size()); }

 private:
  DecodeGraphs() = default;
  int32_t bucket_of(int32_t n) const;
  // The forward (and argmax) of a bucket on the fixed buffers, enqueued.
  Status enqueue(int32_t bucket, bool greedy, const model::KvCacheView& kv);

  kernels::Backend* backend_ = nullptr;
  model::DecoderModel* model_ = nullptr;
  int32_t max_num_seqs_ = 0, max_blocks_ = 0, block_size_ = 0, scratch_block_ = 0;
  std::vector<int32_t> buckets_;
  std::unique_ptr<kernels::DeviceBuffer> inputs_, logits_, ids_;
  std::vector<int32_t> host_inputs_;
  // By (bucket, the step is greedy on a sharded model). shared_ptr:
  // destroying it needs no complete CudaGraph, which CPU-only builds do not
  // have.
  using Key = std::pair<int32_t, bool>;
  std::map<Key, std::shared_ptr<kernels::CudaGraph>> graphs_;
  std::map<Key, bool> warmed_;
  Key last_{0, false};  // what the last launch() ran
  // What the captured graphs read: when the backend's scratch or the
  // model's workspace moved since, they are dropped and captured again.
  uint64_t scratch_epoch_ = 0, workspace_epoch_ = 0;
  int64_t replays_ = 0;
};

}  // namespace llmctl::engine
