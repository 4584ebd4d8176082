#include "runtime/model/random_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace llmctl::model {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

uint16_t to_bf16_bits(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);  // round to nearest even
}

// What a tensor holds: a constant (norms 1, biases 0) or uniform values.
struct Fill {
  bool random = true;
  float constant = 0.0f;
};

Fill fill_of(const std::string& name) {
  if (name.ends_with("norm.weight")) return {false, 1.0f};
  if (name.ends_with(".bias")) return {false, 0.0f};
  return {};
}

// Elements of the whole tensor (row-major index) drawn four at a time: 16
// bits each of one 64-bit hash of (key, index / 4), mapped to the midpoints
// of 65,536 equal steps of [-a, a]. Uniform on [-a, a] has standard
// deviation a / sqrt(3). The bf16 of every step comes from a table made
// once, so an element costs a quarter of a hash and one lookup.
const uint16_t* bf16_of_draw() {
  static const std::vector<uint16_t> table = [] {
    const float half_width = 0.02f * std::sqrt(3.0f);
    std::vector<uint16_t> t(65536);
    for (uint32_t u = 0; u < 65536; ++u) {
      t[u] = to_bf16_bits(((static_cast<float>(u) + 0.5f) * (2.0f / 65536.0f) - 1.0f) * half_width);
    }
    return t;
  }();
  return table.data();
}

// dst[0, n) = the bf16 draws of elements first .. first + n - 1.
void draw_bf16(uint64_t key, uint64_t first, int64_t n, uint16_t* dst) {
  const uint16_t* table = bf16_of_draw();
  uint64_t index = first;
  for (int64_t c = 0; c < n;) {
    const uint64_t bits = splitmix64(key + (index >> 2) * 0xd1b54a32d192ed03ull);
    for (uint64_t k = index & 3; k < 4 && c < n; ++k, ++c, ++index) {
      dst[c] = table[static_cast<uint16_t>(bits >> (k * 16))];
    }
  }
}

// Fills rows [row_begin, row_end) of `w` (the slice `slice` of a whole
// tensor `width` elements wide) as bf16.
void fill_rows(const Fill& fill, uint64_t key, const WeightSlice& slice, int64_t width, int64_t out_width,
               int64_t row_begin, int64_t row_end, uint16_t* out) {
  const uint16_t constant = to_bf16_bits(fill.constant);
  for (int64_t r = row_begin; r < row_end; ++r) {
    uint16_t* dst = out + r * out_width;
    if (!fill.random) {
      std::fill(dst, dst + out_width, constant);
      continue;
    }
    int64_t first = r * width;  // index in the whole tensor of this row's first element
    if (slice.kind == WeightSlice::Kind::kRows) {
      if (r >= slice.count) {  // the vocabulary's padding on the last rank
        std::fill(dst, dst + out_width, uint16_t{0});
        continue;
      }
      first = (slice.begin + r) * width;
    } else if (slice.kind == WeightSlice::Kind::kColumns) {
      first = r * width + slice.begin;
    }
    draw_bf16(key, static_cast<uint64_t>(first), out_width, dst);
  }
}

}  // namespace

Result<ModelWeights> random_model_weights(const ModelConfig& config, const ShardLayout& shard, uint64_t seed,
                                          const LoadProgressCallback& progress, int threads) {
  struct Planned {
    const WeightSpec* spec;
    WeightSlice slice;
    std::vector<int64_t> shape;  // the slice's
  };
  const std::vector<WeightSpec> specs = expected_weights(config);
  std::vector<Planned> plan;
  uint64_t bytes_total = 0;
  for (const WeightSpec& spec : specs) {
    if (!spec.required) continue;  // a tied lm_head: the embedding serves
    Planned p{&spec, weight_slice(spec.name, config, shard), spec.shape};
    if (p.slice.kind == WeightSlice::Kind::kRows) p.shape[0] = p.slice.padded_rows;
    if (p.slice.kind == WeightSlice::Kind::kColumns) p.shape[1] = p.slice.count;
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    bytes_total += static_cast<uint64_t>(n) * 2;
    plan.push_back(std::move(p));
  }
  if (threads <= 0) threads = std::min(64, static_cast<int>(std::thread::hardware_concurrency()));
  threads = std::max(1, threads);
  ModelWeights weights;
  uint64_t bytes_done = 0;
  for (const Planned& p : plan) {
    Weight w;
    w.dtype = DType::kBF16;
    w.shape = p.shape;
    const int64_t rows = p.shape[0];
    const int64_t out_width = p.shape.size() > 1 ? p.shape[1] : 1;
    const int64_t width = p.spec->shape.size() > 1 ? p.spec->shape[1] : 1;  // of the whole tensor
    w.owned.resize(static_cast<std::size_t>(rows * out_width) * 2);
    auto* out = reinterpret_cast<uint16_t*>(w.owned.data());
    const Fill fill = fill_of(p.spec->name);
    const uint64_t key = splitmix64(seed ^ name_hash(p.spec->name));
    // One thread for small tensors; starting threads costs more than filling them.
    const int n = rows * out_width < (int64_t{1} << 20) ? 1 : threads;
    std::vector<std::thread> pool;
    for (int t = 1; t < n; ++t) {
      pool.emplace_back(fill_rows, fill, key, p.slice, width, out_width, rows * t / n, rows * (t + 1) / n, out);
    }
    fill_rows(fill, key, p.slice, width, out_width, 0, rows / n, out);
    for (std::thread& th : pool) th.join();
    bytes_done += w.owned.size();
    weights.put(p.spec->name, std::move(w));
    if (progress) progress(LoadProgress{bytes_done, bytes_total, p.spec->name});
  }
  return weights;
}

}  // namespace llmctl::model
