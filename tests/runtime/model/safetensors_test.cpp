#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>

#include "kernels/kernels.h"
#include "runtime/model/dtype.h"
#include "runtime/model/model_weights.h"
#include "runtime/model/safetensors_file.h"
#include "runtime/model/safetensors_header.h"
#include "safetensors_builder.h"

using namespace llmctl::model;
using namespace llmctl::model::testing;
namespace fs = std::filesystem;

namespace {

llmctl::Result<SafetensorsHeader> parse(const std::string& bytes) { return parse_safetensors_header(bytes, bytes.size()); }

std::string message_of(const std::string& header, const std::string& data) {
  auto r = parse(safetensors_bytes(header, data));
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("llmctl_model_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

}  // namespace

TEST_CASE("a well-formed header parses, tensors sorted by offset, metadata kept") {
  std::string data(24, '\0');
  auto r = parse(safetensors_bytes(
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[16,24]},
          "a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"F32","shape":[0],"data_offsets":[24,24]}})",
      data));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  REQUIRE(r->tensors.size() == 3);
  CHECK(r->tensors[0].name == "a");
  CHECK(r->tensors[1].name == "b");
  CHECK(r->tensors[1].dtype == DType::kBF16);
  CHECK(r->metadata.at("format") == "pt");
}

TEST_CASE("broken safetensors headers are errors naming the problem") {
  const std::string data(16, '\0');
  SUBCASE("shorter than the length prefix") {
    CHECK(contains(parse("abc").status().message(), "too short"));
  }
  SUBCASE("header length past the end (truncated file)") {
    std::string bytes = safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data);
    bytes.resize(20);
    CHECK(contains(parse(bytes).status().message(), "past the end"));
  }
  SUBCASE("huge header length") {
    std::string bytes(16, '\xff');
    CHECK(contains(parse(bytes).status().message(), "limit"));
  }
  SUBCASE("data truncated: offsets past the end of the data section") {
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", data),
                   "a: data_offsets end 32 is past the end"));
  }
  SUBCASE("dtype/shape does not match byte size") {
    CHECK(contains(message_of(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", data),
                   "w: F32 shape [2,3] needs 24 bytes but data_offsets span 16"));
  }
  SUBCASE("overlapping offsets") {
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},
                                  "b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data),
                   "b: data_offsets [8,16] overlap a [0,12]"));
  }
  SUBCASE("overlap hidden behind an empty tensor") {
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},
                                  "e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},
                                  "b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", data),
                   "overlap a"));
  }
  SUBCASE("reversed offsets") {
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", data), "reversed"));
  }
  SUBCASE("unknown dtype, bad shape, bad offsets, not JSON, not an object") {
    CHECK(contains(message_of(R"({"a":{"dtype":"F8X","shape":[1],"data_offsets":[0,1]}})", data), "unknown dtype"));
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data), "non-negative"));
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", data), "data_offsets"));
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", data), "data_offsets"));
    CHECK(contains(message_of(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}})", data),
                   "too large"));
    CHECK(contains(message_of("{\"a\":", data), "not valid JSON"));
    CHECK(contains(message_of("[1,2]", data), "JSON object"));
    CHECK(contains(message_of(R"({"a":5})", data), "a: header entry must be an object"));
  }
}

TEST_CASE("SafetensorsFile maps a file and reports truncation with the path") {
  fs::path dir = temp_dir("file");
  const std::string bytes = f32_safetensors({{"x", {2, 2}, {1, 2, 3, 4}}});
  write_file((dir / "ok.safetensors").string(), bytes);
  auto f = SafetensorsFile::open((dir / "ok.safetensors").string());
  REQUIRE_MESSAGE(f.is_ok(), f.status().to_string());
  const TensorInfo* x = f->find("x");
  REQUIRE(x != nullptr);
  std::vector<float> out(4);
  convert_to_f32(x->dtype, f->data(*x), 4, out.data());
  CHECK(out == std::vector<float>{1, 2, 3, 4});

  write_file((dir / "cut.safetensors").string(), bytes.substr(0, bytes.size() - 3));
  auto cut = SafetensorsFile::open((dir / "cut.safetensors").string());
  CHECK(contains(cut.status().message(), "cut.safetensors"));
  CHECK(contains(cut.status().message(), "past the end"));
  write_file((dir / "empty.safetensors").string(), "");
  CHECK_FALSE(SafetensorsFile::open((dir / "empty.safetensors").string()).is_ok());
  CHECK(SafetensorsFile::open((dir / "none.safetensors").string()).status().code() == llmctl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST_CASE("bf16 and fp16 convert to fp32 exactly") {
  CHECK(bf16_to_f32(0x3f80) == 1.0f);
  CHECK(bf16_to_f32(0xc040) == -3.0f);
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0xc000) == -2.0f);
  CHECK(f16_to_f32(0x3555) == doctest::Approx(0.333252f).epsilon(1e-6));
  CHECK(f16_to_f32(0x0001) == doctest::Approx(5.960464477539063e-08));  // smallest subnormal
  CHECK(f16_to_f32(0x7bff) == 65504.0f);
  CHECK(std::isinf(f16_to_f32(0x7c00)));
}

namespace {

ModelConfig tiny_config() {
  auto c = parse_model_config(R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":4,"intermediate_size":6,
    "num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":5,"tie_word_embeddings":true})");
  REQUIRE(c.is_ok());
  return c.value();
}

std::size_t reference_elements(const std::vector<F32Tensor>& tensors) {
  std::size_t n = 0;
  for (const auto& t : tensors) n += t.values.size();
  return n;
}

std::vector<F32Tensor> tensors_for(const ModelConfig& c) {
  std::vector<F32Tensor> out;
  float v = 0;
  for (const WeightSpec& s : expected_weights(c)) {
    if (!s.required) continue;
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    std::vector<float> values(static_cast<std::size_t>(n));
    for (float& x : values) x = (v += 0.5f);
    out.push_back({s.name, s.shape, values});
  }
  return out;
}

}  // namespace

TEST_CASE("weights: single file loads with progress; wrong shape and missing tensor named precisely") {
  const ModelConfig c = tiny_config();
  fs::path dir = temp_dir("weights");
  auto tensors = tensors_for(c);
  write_file((dir / "model.safetensors").string(), f32_safetensors(tensors));
  uint64_t last_done = 0, total = 0;
  int calls = 0;
  auto w = load_model_weights(dir.string(), c, [&](const LoadProgress& p) {
    CHECK(p.bytes_done >= last_done);
    last_done = p.bytes_done;
    total = p.bytes_total;
    ++calls;
  });
  REQUIRE_MESSAGE(w.is_ok(), w.status().to_string());
  CHECK(calls == static_cast<int>(tensors.size()));
  CHECK(last_done == total);
  const Weight* q = w->find("model.layers.1.self_attn.q_proj.weight");
  REQUIRE(q != nullptr);
  CHECK(q->shape == std::vector<int64_t>{4, 4});
  CHECK(w->find("lm_head.weight") == nullptr);  // tied
  CHECK(w->find("model.layers.0.self_attn.k_proj.bias")->num_elements() == 2);

  auto bad = tensors;
  for (auto& t : bad) {
    if (t.name == "model.layers.1.self_attn.q_proj.weight") t.shape = {2, 8};
  }
  write_file((dir / "model.safetensors").string(), f32_safetensors(bad));
  auto r = load_model_weights(dir.string(), c);
  CHECK(r.status().message() == "model.layers.1.self_attn.q_proj.weight: shape [2,8], expected [4,4]");

  auto missing = tensors;
  missing.erase(missing.begin() + 3);
  write_file((dir / "model.safetensors").string(), f32_safetensors(missing));
  auto m = load_model_weights(dir.string(), c);
  CHECK(contains(m.status().message(), tensors[3].name + ": missing from the checkpoint"));

  fs::remove(dir / "model.safetensors");
  CHECK(load_model_weights(dir.string(), c).status().code() == llmctl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST_CASE("weights: sharded via model.safetensors.index.json") {
  const ModelConfig c = tiny_config();
  fs::path dir = temp_dir("sharded");
  auto tensors = tensors_for(c);
  std::vector<F32Tensor> a(tensors.begin(), tensors.begin() + 7), b(tensors.begin() + 7, tensors.end());
  write_file((dir / "model-00001-of-00002.safetensors").string(), f32_safetensors(a));
  write_file((dir / "model-00002-of-00002.safetensors").string(), f32_safetensors(b));
  std::string index = R"({"metadata":{},"weight_map":{)";
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (i) index += ',';
    index += "\"" + tensors[i].name + "\":\"model-0000";
    index += i < 7 ? "1" : "2";
    index += "-of-00002.safetensors\"";
  }
  write_file((dir / "model.safetensors.index.json").string(), index + "}}");
  auto w = load_model_weights(dir.string(), c);
  REQUIRE_MESSAGE(w.is_ok(), w.status().to_string());
  CHECK(w->all().size() == tensors.size());
  CHECK(w->find(tensors.back().name)->to_f32() == tensors.back().values);

  // The same tensor in both shards is an error naming it.
  b.push_back(a[0]);
  write_file((dir / "model-00002-of-00002.safetensors").string(), f32_safetensors(b));
  auto dup = load_model_weights(dir.string(), c);
  CHECK(contains(dup.status().message(), a[0].name + ": present in both"));
  fs::remove_all(dir);
}

TEST_CASE("weights: bf16 and f16 checkpoints load to the fp32 checkpoint's values through the CPU backend") {
  const ModelConfig c = tiny_config();
  auto tensors = tensors_for(c);
  // Values exact in bf16 and f16 (at most 6 significant bits, |v| <= 4), so
  // all three files hold the same numbers.
  int k = 0;
  for (auto& t : tensors) {
    for (float& v : t.values) v = static_cast<float>((k++ * 37) % 129 - 64) / 16.0f;
  }
  auto backend = llmctl::kernels::make_cpu_backend(2);
  for (const std::string dtype : {"F32", "BF16", "F16"}) {
    CAPTURE(dtype);
    fs::path dir = temp_dir("typed_" + dtype);
    write_file((dir / "model.safetensors").string(), typed_safetensors(tensors, dtype));
    auto w = load_model_weights(dir.string(), c);
    REQUIRE_MESSAGE(w.is_ok(), w.status().to_string());
    CHECK(w->total_bytes() == (dtype == "F32" ? 4u : 2u) * reference_elements(tensors));
    for (const auto& t : tensors) {
      CAPTURE(t.name);
      const Weight* weight = w->find(t.name);
      REQUIRE(weight != nullptr);
      CHECK(dtype_name(weight->dtype) == dtype);
      CHECK(weight->shape == t.shape);
      // The CPU backend's upload converts to fp32 (on its threads).
      auto buf = backend->allocate(weight->num_elements() * sizeof(float));
      REQUIRE(buf.is_ok());
      backend->upload_weight((*buf)->data(), weight->data(), weight_dtype_of(weight->dtype), weight->num_elements());
      const std::vector<float> got((*buf)->f32(), (*buf)->f32() + weight->num_elements());
      CHECK(got == t.values);
      CHECK(weight->to_f32() == t.values);
    }
    fs::remove_all(dir);
  }
}

TEST_CASE("weights: a tensor of a non-float dtype is refused naming it") {
  const ModelConfig c = tiny_config();
  fs::path dir = temp_dir("int_weight");
  auto tensors = tensors_for(c);
  std::string bytes = f32_safetensors(tensors);
  // Same size per element, so only the header's dtype changes.
  const std::string needle = "\"" + tensors[2].name + "\":{\"dtype\":\"F32\"";
  const std::size_t at = bytes.find(needle);
  REQUIRE(at != std::string::npos);
  bytes.replace(at, needle.size(), "\"" + tensors[2].name + "\":{\"dtype\":\"I32\"");
  write_file((dir / "model.safetensors").string(), bytes);
  auto w = load_model_weights(dir.string(), c);
  CHECK(w.status().message() == tensors[2].name + ": dtype I32 is not a float weight type (F32, F16, BF16)");
  fs::remove_all(dir);
}

TEST_CASE("stories260K weights load") {
  const std::string dir = std::string(LLMCTL_SHARED_DIR) + "/assets/stories260K";
  auto c = load_model_config(dir);
  REQUIRE(c.is_ok());
  auto w = load_model_weights(dir, *c);
  REQUIRE_MESSAGE(w.is_ok(), w.status().to_string());
  CHECK(w->find("model.embed_tokens.weight")->shape == std::vector<int64_t>{512, 64});
  CHECK(w->find("model.layers.4.mlp.down_proj.weight")->shape == std::vector<int64_t>{64, 172});
}
