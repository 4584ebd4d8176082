#include "runtime/engine/decode_graphs.h"

#include <algorithm>
#include <cstring>
#include <string>

#include <fmt/format.h>

#if defined(LLMCTL_WITH_CUDA)
#include "kernels/cuda_backend.h"
#endif

namespace llmctl::engine {
namespace {

// Offsets (in int32s) of each input inside the fixed buffer of the largest
// bucket, so a smaller bucket's graph reads the same addresses.
struct Layout {
  int64_t token_ids, positions, slot_mapping, query_start, context_len, block_tables, logits_indices,
      embedding_rows, total;
};

Layout layout_for(int64_t max_rows, int64_t max_blocks) {
  Layout l{};
  l.token_ids = 0;
  l.positions = l.token_ids + max_rows;
  l.slot_mapping = l.positions + max_rows;
  l.query_start = l.slot_mapping + max_rows;
  l.context_len = l.query_start + max_rows + 1;
  l.block_tables = l.context_len + max_rows;
  l.logits_indices = l.block_tables + max_rows * max_blocks;
  l.embedding_rows = l.logits_indices + max_rows;  // read only when sharded
  l.total = l.embedding_rows + max_rows;
  return l;
}

}  // namespace

DecodeGraphs::~DecodeGraphs() = default;

std::vector<int32_t> DecodeGraphs::buckets_for(int32_t max_num_seqs) {
  std::vector<int32_t> buckets;
  for (int32_t b = 1; b < max_num_seqs && b < kBucketStep; b *= 2) buckets.push_back(b);
  for (int32_t b = kBucketStep; b < max_num_seqs; b += kBucketStep) buckets.push_back(b);
  if (max_num_seqs >= 1) buckets.push_back(max_num_seqs);
  return buckets;
}

Result<std::unique_ptr<DecodeGraphs>> DecodeGraphs::create(kernels::Backend& backend, model::DecoderModel& model,
                                                           int32_t max_num_seqs, int32_t max_model_len,
                                                           int32_t block_size, int32_t scratch_block) {
#if defined(LLMCTL_WITH_CUDA)
  if (backend.name() != "cuda") return Status::invalid_argument("decode graphs need the CUDA backend");
  if (max_num_seqs < 1 || max_model_len < 1 || block_size < 1) {
    return Status::invalid_argument("decode graphs: max_num_seqs, max_model_len and block_size must be positive");
  }
  std::unique_ptr<DecodeGraphs> g(new DecodeGraphs());
  g->backend_ = &backend;
  g->model_ = &model;
  g->max_num_seqs_ = max_num_seqs;
  g->max_blocks_ = (max_model_len + block_size - 1) / block_size;
  g->block_size_ = block_size;
  g->scratch_block_ = scratch_block;
  g->buckets_ = buckets_for(max_num_seqs);
  const int64_t rows = max_num_seqs;
  const Layout l = layout_for(rows, g->max_blocks_);
  ASSIGN_OR_RETURN(g->inputs_, backend.allocate(static_cast<std::size_t>(l.total) * sizeof(int32_t)));
  ASSIGN_OR_RETURN(g->logits_, backend.allocate(static_cast<std::size_t>(model.logits_floats(rows)) * sizeof(float)));
  ASSIGN_OR_RETURN(g->ids_, backend.allocate(static_cast<std::size_t>(rows) * sizeof(int32_t)));
  g->host_inputs_.assign(static_cast<std::size_t>(l.total), 0);
  return g;
#else
  (void)backend, (void)model, (void)max_num_seqs, (void)max_model_len, (void)block_size, (void)scratch_block;
  return Status::unavailable("decode graphs need a build with the CUDA backend");
#endif
}

bool DecodeGraphs::accepts(const StepBatch& b) const {
  const int32_t n = b.num_seqs();
  if (n < 1 || n > max_num_seqs_ || b.num_tokens() != n || b.max_blocks_per_seq > max_blocks_) return false;
  if (static_cast<int32_t>(b.logits_indices.size()) != n) return false;
  for (int32_t i = 0; i < n; ++i) {
    if (b.logits_indices[static_cast<std::size_t>(i)] != i) return false;
  }
  return true;
}

int32_t DecodeGraphs::bucket_of(int32_t n) const {
  return *std::lower_bound(buckets_.begin(), buckets_.end(), n);
}

Status DecodeGraphs::enqueue(int32_t bucket, bool greedy, const model::KvCacheView& kv) {
  const Layout l = layout_for(max_num_seqs_, max_blocks_);
  const int32_t* base = inputs_->i32();
  model::ForwardInputs in;
  in.num_tokens = bucket;
  in.token_ids = base + l.token_ids;
  in.positions = base + l.positions;
  in.slot_mapping = base + l.slot_mapping;
  in.attention.num_seqs = bucket;
  in.attention.query_start = base + l.query_start;
  in.attention.context_len = base + l.context_len;
  in.attention.block_tables = base + l.block_tables;
  in.attention.max_blocks_per_seq = max_blocks_;
  in.attention.block_size = block_size_;
  in.num_logits = bucket;
  in.logits_indices = base + l.logits_indices;
  if (!model_->layout().sharded()) {
    // Logits and ids both: one graph serves greedy and sampled steps.
    return model_->forward(in, kv, logits_->f32(), ids_->i32());
  }
  in.embedding_rows = base + l.embedding_rows;
  return greedy ? model_->forward(in, kv, nullptr, ids_->i32()) : model_->forward(in, kv, logits_->f32());
}

Status DecodeGraphs::launch(const StepBatch& b, const model::KvCacheView& kv) {
#if defined(LLMCTL_WITH_CUDA)
  const int32_t n = b.num_seqs();
  const int32_t bucket = bucket_of(n);
  const bool sharded = model_->layout().sharded();
  const Key key{bucket, sharded && b.greedy};
  const Layout l = layout_for(max_num_seqs_, max_blocks_);
  int32_t* h = host_inputs_.data();
  const int32_t scratch_slot = scratch_block_ * block_size_;
  for (int32_t i = 0; i < bucket; ++i) {
    const bool real = i < n;
    const auto s = static_cast<std::size_t>(i);
    h[l.token_ids + i] = real ? b.token_ids[s] : 0;
    h[l.positions + i] = real ? b.positions[s] : 0;
    h[l.slot_mapping + i] = real ? b.slot_mapping[s] : scratch_slot;
    h[l.query_start + i] = i;
    h[l.context_len + i] = real ? b.context_len[s] : 1;
    h[l.logits_indices + i] = i;
    if (sharded) h[l.embedding_rows + i] = model_->embedding_row(h[l.token_ids + i]);
    int32_t* row = h + l.block_tables + static_cast<int64_t>(i) * max_blocks_;
    if (real) {
      const int32_t* src = b.block_tables.data() + static_cast<int64_t>(i) * b.max_blocks_per_seq;
      std::copy(src, src + b.max_blocks_per_seq, row);
      std::fill(row + b.max_blocks_per_seq, row + max_blocks_, scratch_block_);
    } else {
      std::fill(row, row + max_blocks_, scratch_block_);
    }
  }
  h[l.query_start + bucket] = bucket;
  backend_->copy_to_device(inputs_->data(), host_inputs_.data(), host_inputs_.size() * sizeof(int32_t));

  if (backend_->scratch_epoch() != scratch_epoch_ || model_->workspace_epoch() != workspace_epoch_) {
    graphs_.clear();
    scratch_epoch_ = backend_->scratch_epoch();
    workspace_epoch_ = model_->workspace_epoch();
  }
  last_ = key;
  const std::string what = fmt::format("the decode graph of batch {}{}", bucket, key.second ? " (greedy)" : "");
  auto found = graphs_.find(key);
  if (found != graphs_.end()) {
    found->second->replay();
    ++replays_;
  } else if (!warmed_[key]) {
    // The first step of a bucket runs eagerly: the ops size their scratch
    // buffers now, so the capture below allocates nothing.
    RETURN_IF_ERROR(enqueue(bucket, key.second, kv));
    warmed_[key] = true;
  } else {
    RETURN_IF_ERROR(kernels::CudaGraph::begin_capture(*backend_));
    Status st = enqueue(bucket, key.second, kv);
    auto graph = kernels::CudaGraph::end_capture(*backend_);
    if (!st.is_ok()) return st.with_context("capturing " + what);
    if (!graph.is_ok()) return graph.status().with_context("capturing " + what);
    if (backend_->scratch_epoch() != scratch_epoch_ || model_->workspace_epoch() != workspace_epoch_) {
      // Cannot happen after the bucket's eager step sized everything; a
      // graph that allocated would read memory it does not own.
      return Status::internal("a scratch buffer grew while capturing " + what);
    }
    (*graph)->replay();
    graphs_[key] = std::shared_ptr<kernels::CudaGraph>(std::move(graph).value());
    ++replays_;
  }
  return Status::ok();
#else
  (void)b, (void)kv;
  return Status::unavailable("decode graphs need a build with the CUDA backend");
#endif
}

Result<std::vector<float>> DecodeGraphs::read(int32_t n, std::vector<int32_t>* greedy_ids) {
  if (greedy_ids != nullptr) {
    greedy_ids->resize(static_cast<std::size_t>(n));
    backend_->copy_to_host(greedy_ids->data(), ids_->data(), greedy_ids->size() * sizeof(int32_t));
    return std::vector<float>();
  }
  const int64_t vocab = model_->config().vocab_size;
  if (!model_->layout().sharded()) {
    std::vector<float> logits(static_cast<std::size_t>(n * vocab));
    backend_->copy_to_host(logits.data(), logits_->data(), logits.size() * sizeof(float));
    return logits;
  }
  if (last_.second) return Status::internal("decode graphs: a greedy step left no logits to read");
  // [world_size, bucket, vocab_per_rank]: the bucket's padding rows are
  // joined too, then dropped.
  const int32_t bucket = last_.first;
  std::vector<float> gathered(static_cast<std::size_t>(model_->logits_floats(bucket)));
  backend_->copy_to_host(gathered.data(), logits_->data(), gathered.size() * sizeof(float));
  std::vector<float> joined(static_cast<std::size_t>(bucket * vocab));
  model_->join_logits(gathered.data(), bucket, joined.data());
  joined.resize(static_cast<std::size_t>(n * vocab));
  return joined;
}

}  // namespace llmctl::engine
