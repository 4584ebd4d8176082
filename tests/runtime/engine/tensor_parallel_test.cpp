// Tensor parallel over threads of one process (InProcessGroup): rank 0 runs
// the engine, the other ranks run serve_rank on their shard. Greedy tokens
// must equal the transformers references the single-process tests use, for
// every tiny architecture (GQA with KV heads split at tp 2 and replicated at
// tp 4, qkv bias, tied embeddings, q/k norm, sliding window) and stories260K.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <thread>

#include "engine_test_util.h"
#include "in_process_communicator.h"
#include "runtime/engine/rank_worker.h"
#include "runtime/engine/step_batch.h"

using namespace llmctl;
using namespace llmctl::engine;
using namespace llmctl::engine::testing;

namespace {

struct RankResults {
  std::vector<Status> worker_status;
};

// Runs `body` with rank 0's engine of a tp-rank group over `dir`; the other
// ranks are threads running run_rank_worker until the engine is destroyed.
RankResults with_tp_engine(const std::string& dir, int tp, EngineConfig cfg, InProcessGroup& group,
                           const std::function<void(Engine&)>& body) {
  std::vector<std::unique_ptr<dist::Communicator>> comms;
  for (int r = 0; r < tp; ++r) comms.push_back(group.communicator(r));
  cfg.num_threads = 1;
  if (cfg.scheduler.max_model_len == 2048) cfg.scheduler.max_model_len = 0;
  RankResults results;
  results.worker_status.resize(static_cast<std::size_t>(tp));
  std::vector<std::thread> threads;
  for (int r = 1; r < tp; ++r) {
    threads.emplace_back([&, r] { results.worker_status[r] = run_rank_worker(dir, cfg, *comms[r]); });
  }
  {
    cfg.communicator = comms[0].get();
    auto loaded = load_engine(dir, cfg);
    if (!loaded.is_ok()) {
      // The workers wait for rank 0's init; failing the group releases them.
      group.fail_after(0);
      for (auto& t : threads) t.join();
      FAIL(loaded.status().to_string());
    }
    body(*loaded->engine);
  }
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace

TEST_CASE("tensor parallel: tiny models at tp 2 and 4 give transformers' greedy tokens, batched") {
  const char* models[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-mistral", "tiny-qwen2-swa"};
  for (const char* name : models) {
    const std::string dir = fixture_dir() + "/" + name;
    auto ref = read_json(dir + "/reference.json");
    // First-token logprobs from one process, to compare the joined logits.
    std::vector<std::vector<std::pair<int32_t, float>>> single_top;
    {
      auto loaded = load(dir);
      SamplingParams p = greedy(1);
      p.logprobs = 5;
      std::vector<uint64_t> ids;
      for (const auto& r : ref["references"]) ids.push_back(*loaded.engine->add_request(ids_of(r["prompt_ids"]), p));
      auto done = run_all(*loaded.engine);
      for (uint64_t id : ids) single_top.push_back(done[id].outputs[0].logprobs.at(0).top);
    }
    for (int tp : {2, 4}) {
      CAPTURE(std::string(name));
      CAPTURE(tp);
      InProcessGroup group(tp);
      EngineConfig cfg;
      cfg.scheduler.max_num_batched_tokens = 16;  // chunked prefill across steps
      auto results = with_tp_engine(dir, tp, cfg, group, [&](Engine& engine) {
        std::map<uint64_t, std::vector<int32_t>> expected;
        std::vector<uint64_t> order;
        for (const auto& r : ref["references"]) {
          auto id = engine.add_request(ids_of(r["prompt_ids"]), greedy(24));
          REQUIRE(id.is_ok());
          expected[*id] = ids_of(r["greedy_ids"]);
          order.push_back(*id);
        }
        SamplingParams p = greedy(1);
        p.logprobs = 5;
        std::vector<uint64_t> top_ids;
        for (const auto& r : ref["references"]) top_ids.push_back(*engine.add_request(ids_of(r["prompt_ids"]), p));
        auto done = run_all(engine);
        for (const auto& [id, want] : expected) CHECK(done[id].outputs[0].token_ids == want);
        for (std::size_t i = 0; i < top_ids.size(); ++i) {
          const auto& got = done[top_ids[i]].outputs[0].logprobs.at(0).top;
          REQUIRE(got.size() == single_top[i].size());
          for (std::size_t k = 0; k < got.size(); ++k) {
            CHECK(got[k].first == single_top[i][k].first);
            CHECK(std::abs(got[k].second - single_top[i][k].second) < 1e-4);
          }
        }
      });
      for (int r = 1; r < tp; ++r) CHECK_MESSAGE(results.worker_status[r].is_ok(), results.worker_status[r].to_string());
    }
  }
}

TEST_CASE("tensor parallel: stories260K at tp 2 and 4 gives transformers' greedy tokens") {
  auto ref = read_json(stories_dir() + "/reference_greedy.json");
  for (int tp : {2, 4}) {
    CAPTURE(tp);
    InProcessGroup group(tp);
    auto results = with_tp_engine(stories_dir(), tp, EngineConfig{}, group, [&](Engine& engine) {
      std::map<uint64_t, std::vector<int32_t>> expected;
      for (const auto& r : ref["references"]) {
        const auto want = ids_of(r["greedy_ids"]);
        auto id = engine.add_request(ids_of(r["prompt_ids"]), greedy(static_cast<int>(want.size())));
        REQUIRE(id.is_ok());
        expected[*id] = want;
      }
      auto done = run_all(engine);
      for (const auto& [id, want] : expected) CHECK(done[id].outputs[0].token_ids == want);
    });
    for (int r = 1; r < tp; ++r) CHECK(results.worker_status[r].is_ok());
  }
}

namespace {

// Forwards to a rank's communicator and records every all_gather's count.
class GatherCounting final : public dist::Communicator {
 public:
  explicit GatherCounting(std::unique_ptr<dist::Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int world_size() const override { return inner_->world_size(); }
  Status all_reduce_sum(float* data, int64_t count) override { return inner_->all_reduce_sum(data, count); }
  Status all_gather(const float* in, float* out, int64_t count) override {
    counts.push_back(count);
    return inner_->all_gather(in, out, count);
  }
  Status broadcast_bytes(std::string& bytes, int root) override { return inner_->broadcast_bytes(bytes, root); }
  Status barrier() override { return inner_->barrier(); }
  std::vector<int64_t> counts;

 private:
  std::unique_ptr<dist::Communicator> inner_;
};

}  // namespace

TEST_CASE("tensor parallel: plain-greedy steps gather (maximum, index) pairs, never the logits") {
  const int tp = 2;
  InProcessGroup group(tp);
  auto config = model::load_model_config(stories_dir());
  REQUIRE(config.is_ok());
  auto layout = model::ShardLayout::make(*config, 0, tp);
  REQUIRE(layout.is_ok());
  std::vector<std::unique_ptr<GatherCounting>> comms;
  for (int r = 0; r < tp; ++r) comms.push_back(std::make_unique<GatherCounting>(group.communicator(r)));
  EngineConfig cfg;
  cfg.num_threads = 1;
  cfg.scheduler.max_model_len = 0;
  Status worker;
  std::thread rank1([&] { worker = run_rank_worker(stories_dir(), cfg, *comms[1]); });
  auto ref = read_json(stories_dir() + "/reference_greedy.json");
  {
    cfg.communicator = comms[0].get();
    auto loaded = load_engine(stories_dir(), cfg);
    if (!loaded.is_ok()) {
      group.fail_after(0);
      rank1.join();
      FAIL(loaded.status().to_string());
    }
    Engine& engine = *loaded->engine;
    std::map<uint64_t, std::vector<int32_t>> expected;
    for (const auto& r : ref["references"]) {
      const auto want = ids_of(r["greedy_ids"]);
      auto id = engine.add_request(ids_of(r["prompt_ids"]), greedy(static_cast<int>(want.size())));
      REQUIRE(id.is_ok());
      expected[*id] = want;
    }
    comms[0]->counts.clear();  // the profiling step, if any, is not a greedy step
    auto done = run_all(engine);
    for (const auto& [id, want] : expected) CHECK(done[id].outputs[0].token_ids == want);
    REQUIRE_FALSE(comms[0]->counts.empty());
    for (int64_t count : comms[0]->counts) {
      // Two floats per sampling row, at most one row per running sequence.
      CHECK(count % 2 == 0);
      CHECK(count <= 2 * static_cast<int64_t>(expected.size()));
    }
    // A sampled request needs the rows whole: its steps gather the logits.
    SamplingParams sampled = greedy(3);
    sampled.temperature = 0.8;
    sampled.seed = 7;
    comms[0]->counts.clear();
    REQUIRE(engine.add_request(ids_of(ref["references"][0]["prompt_ids"]), sampled).is_ok());
    run_all(engine);
    REQUIRE_FALSE(comms[0]->counts.empty());
    CHECK(comms[0]->counts.back() == layout->vocab_per_rank);
  }
  rank1.join();
  CHECK_MESSAGE(worker.is_ok(), worker.to_string());
}

TEST_CASE("tensor parallel: a failing collective fails the step on every rank, without hanging") {
  InProcessGroup group(2);
  // Rank 0's init broadcast is collective 0; the first step fails partway.
  group.fail_after(4);
  auto results = with_tp_engine(fixture_dir() + "/tiny-llama", 2, EngineConfig{}, group, [&](Engine& engine) {
    REQUIRE(engine.add_request({1, 2, 3, 4}, greedy(4)).is_ok());
    auto step = engine.step();
    REQUIRE_FALSE(step.is_ok());
    CHECK(step.status().message().find("test group: collective 4 fails") != std::string::npos);
    auto again = engine.step();
    REQUIRE_FALSE(again.is_ok());
    CHECK(again.status().message().find("rank failed earlier") != std::string::npos);
  });
  REQUIRE_FALSE(results.worker_status[1].is_ok());
  CHECK(results.worker_status[1].message().find("rank 1 of 2") != std::string::npos);
}

TEST_CASE("tensor parallel: indivisible shapes are refused naming the count") {
  auto config = model::load_model_config(stories_dir());
  REQUIRE(config.is_ok());
  auto heads = model::ShardLayout::make(*config, 0, 3);
  REQUIRE_FALSE(heads.is_ok());
  CHECK(heads.status().message() == "num_attention_heads 8 is not divisible by --tp 3");
  auto ff = model::ShardLayout::make(*config, 0, 8);
  REQUIRE_FALSE(ff.is_ok());
  CHECK(ff.status().message() == "intermediate_size 172 is not divisible by --tp 8");
  model::ModelConfig odd = *config;
  odd.num_attention_heads = 12;
  odd.num_key_value_heads = 3;
  odd.intermediate_size = 8;
  auto kv = model::ShardLayout::make(odd, 0, 2);
  REQUIRE_FALSE(kv.is_ok());
  CHECK(kv.status().message() == "num_key_value_heads 3 must divide or be divisible by --tp 2");
}

TEST_CASE("rank messages round-trip and reject malformed bytes") {
  RankMessage m;
  m.kind = RankMessage::Kind::kStep;
  m.batch.max_blocks_per_seq = 3;
  m.batch.token_ids = {5, 6, 7};
  m.batch.positions = {0, 1, 2};
  m.batch.slot_mapping = {8, 9, 10};
  m.batch.query_start = {0, 3};
  m.batch.context_len = {3};
  m.batch.block_tables = {2, 0, 0};
  m.batch.logits_indices = {2};
  CHECK_FALSE(RankMessage::decode(m.encode())->batch.greedy);
  m.batch.greedy = true;
  auto back = RankMessage::decode(m.encode());
  REQUIRE(back.is_ok());
  CHECK(back->kind == RankMessage::Kind::kStep);
  CHECK(back->batch.greedy);
  RankMessage graphs;
  graphs.kind = RankMessage::Kind::kGraphs;
  graphs.max_num_seqs = 64;
  graphs.max_model_len = 1024;
  auto graphs_back = RankMessage::decode(graphs.encode());
  REQUIRE(graphs_back.is_ok());
  CHECK(graphs_back->kind == RankMessage::Kind::kGraphs);
  CHECK(graphs_back->max_num_seqs == 64);
  CHECK(graphs_back->max_model_len == 1024);
  CHECK(back->batch.max_blocks_per_seq == 3);
  CHECK(back->batch.token_ids == m.batch.token_ids);
  CHECK(back->batch.slot_mapping == m.batch.slot_mapping);
  CHECK(back->batch.block_tables == m.batch.block_tables);
  CHECK(back->batch.logits_indices == m.batch.logits_indices);
  std::string bytes = m.encode();
  CHECK_FALSE(RankMessage::decode(bytes.substr(0, bytes.size() - 4)).is_ok());
  CHECK_FALSE(RankMessage::decode("abc").is_ok());
  bytes[0] = 9;
  CHECK_FALSE(RankMessage::decode(bytes).is_ok());
  bytes = m.encode();
  bytes[6 * sizeof(int32_t)] = 2;  // the greedy flag
  CHECK_FALSE(RankMessage::decode(bytes).is_ok());
}
