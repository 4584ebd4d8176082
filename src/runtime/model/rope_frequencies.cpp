#include "runtime/model/rope_frequencies.h"

#include <cmath>
#include <numbers>

namespace llmctl::model {

std::vector<float> rope_inv_freq(const ModelConfig& config) {
  const RopeConfig& rope = config.rope;
  const int64_t dim = config.head_dim;
  std::vector<float> inv(static_cast<std::size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(rope.theta), exponent);
  }
  if (rope.type == RopeConfig::Type::kLinear) {
    for (float& f : inv) f = static_cast<float>(f / rope.factor);
  } else if (rope.type == RopeConfig::Type::kLlama3) {
    // Long wavelengths are slowed by `factor`, short ones kept, and the band
    // between the two wavelength bounds interpolated smoothly.
    const double old_len = static_cast<double>(rope.original_max_position_embeddings);
    const double low_wavelen = old_len / rope.low_freq_factor;
    const double high_wavelen = old_len / rope.high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / rope.factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
        f = static_cast<float>((1 - smooth) * f / rope.factor + smooth * f);
      }
    }
  }
  return inv;
}

}  // namespace llmctl::model
