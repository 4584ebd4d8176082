// The rotary embedding's inverse frequencies, with the config's scaling
// (linear, llama3) folded in, computed as transformers does in fp32.
#pragma once

#include <vector>

#include "runtime/model/model_config.h"

namespace llmctl::model {

// [head_dim / 2] values: theta^(-2i / head_dim), then scaled.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace llmctl::model
