// Async scheduling (EngineConfig::async_scheduling): step N+1 is scheduled
// around placeholder tokens while step N runs, and step() returns step N's
// outputs once step N+1 is launched. Whatever the interleaving, every
// request must end exactly as it does with the plain loop: the same tokens,
// finish reasons and logprobs, with requests added and aborted between
// steps, sequences stopping early (eos, stop ids) or at their length limit,
// preemption under a small KV cache and prefix-cache hits.
#include <doctest/doctest.h>

#include <functional>

#include "engine_test_util.h"

using namespace llmctl::engine;
using namespace llmctl::engine::testing;

namespace {

struct Finished {
  std::vector<std::vector<int32_t>> tokens;  // per completion
  std::vector<FinishReason> reasons;
  std::vector<std::vector<float>> logprobs;
  int32_t cached = 0;
};

// The requests of a workload: what to add before the first step, and what
// to do after given steps (add more, abort one), by request label.
struct Workload {
  std::vector<std::pair<std::vector<int32_t>, SamplingParams>> initial;
  std::map<int, std::vector<std::pair<std::vector<int32_t>, SamplingParams>>> added_after_step;
  std::map<int, int> abort_after_step;  // step -> label (index in the order added)
};

struct RunResult {
  std::vector<Finished> by_label;
  bool in_flight_after_first_step = false;
  int64_t rebuilt_batches = 0;
  uint64_t preemptions = 0;
  bool all_blocks_free = false;
};

RunResult run_workload(const std::string& dir, EngineConfig cfg, const Workload& w) {
  auto loaded = load(dir, cfg);
  Engine& e = *loaded.engine;
  std::vector<uint64_t> ids;
  auto add = [&](const std::vector<std::pair<std::vector<int32_t>, SamplingParams>>& reqs) {
    for (const auto& [prompt, params] : reqs) {
      auto id = e.add_request(prompt, params);
      REQUIRE_MESSAGE(id.is_ok(), id.status().to_string());
      ids.push_back(*id);
    }
  };
  add(w.initial);
  std::map<uint64_t, RequestOutput> done;
  RunResult result;
  for (int step = 1; e.has_unfinished(); ++step) {
    REQUIRE(step < 2000);
    auto outs = e.step();
    REQUIRE_MESSAGE(outs.is_ok(), outs.status().to_string());
    for (auto& o : *outs) {
      if (o.finished) done[o.request_id] = o;
    }
    if (step == 1) result.in_flight_after_first_step = e.step_in_flight();
    if (auto it = w.added_after_step.find(step); it != w.added_after_step.end()) add(it->second);
    if (auto it = w.abort_after_step.find(step); it != w.abort_after_step.end()) e.abort_request(ids.at(it->second));
  }
  for (uint64_t id : ids) {
    REQUIRE(done.count(id) == 1);
    Finished f;
    f.cached = done[id].num_cached_tokens;
    for (const CompletionOutput& co : done[id].outputs) {
      f.tokens.push_back(co.token_ids);
      f.reasons.push_back(co.finish_reason);
      std::vector<float> lp;
      for (const TokenLogprob& t : co.logprobs) lp.push_back(t.logprob);
      f.logprobs.push_back(lp);
      for (int32_t t : co.token_ids) CHECK(t >= 0);  // no placeholder ever leaks out
    }
    result.by_label.push_back(f);
  }
  result.rebuilt_batches = e.rebuilt_batches();
  result.preemptions = e.scheduler().num_preemptions();
  const BlockManager& blocks = e.scheduler().block_manager();
  result.all_blocks_free = blocks.num_free_blocks() == blocks.num_blocks();
  return result;
}

void check_same(const RunResult& plain, const RunResult& async) {
  REQUIRE(plain.by_label.size() == async.by_label.size());
  for (std::size_t i = 0; i < plain.by_label.size(); ++i) {
    CAPTURE(i);
    const Finished& a = plain.by_label[i];
    const Finished& b = async.by_label[i];
    CHECK(a.tokens == b.tokens);
    CHECK(a.reasons == b.reasons);
    REQUIRE(a.logprobs.size() == b.logprobs.size());
    for (std::size_t j = 0; j < a.logprobs.size(); ++j) {
      REQUIRE(a.logprobs[j].size() == b.logprobs[j].size());
      for (std::size_t k = 0; k < a.logprobs[j].size(); ++k) {
        CHECK(a.logprobs[j][k] == doctest::Approx(b.logprobs[j][k]).epsilon(1e-4));
      }
    }
  }
  CHECK(plain.all_blocks_free);
  CHECK(async.all_blocks_free);
}

SamplingParams sampled(uint64_t seed, int max_tokens) {
  SamplingParams p;
  p.temperature = 0.9;
  p.top_k = 40;
  p.top_p = 0.9;
  p.seed = seed;
  p.max_tokens = max_tokens;
  return p;
}

// stories260K's greedy continuation of `prompt`, to pick stop ids that occur.
std::vector<int32_t> greedy_tokens(const std::vector<int32_t>& prompt, int n) {
  auto loaded = load(stories_dir());
  auto id = loaded.engine->add_request(prompt, greedy(n));
  REQUIRE(id.is_ok());
  return run_all(*loaded.engine)[*id].outputs[0].token_ids;
}

Workload mixed_workload() {
  const std::vector<int32_t> a{1, 403, 411, 263, 419}, b{1, 365, 34, 167},
      c{1, 200, 201, 202, 203, 204, 205, 206, 207, 208}, d{1, 44, 55};
  const std::vector<int32_t> cont = greedy_tokens(a, 12);
  Workload w;
  // Length limits ending in different steps (the placeholder-free path).
  w.initial.push_back({a, greedy(7)});
  w.initial.push_back({b, greedy(30)});
  // Stops on a token it produces: the prepared next step loses its row.
  SamplingParams stop = greedy(40);
  stop.stop_token_ids = {cont[5]};
  stop.ignore_eos = false;
  w.initial.push_back({a, stop});
  // Seeded sampling with penalties and min_tokens, drawn by sample_rows.
  SamplingParams pen = sampled(11, 25);
  pen.n = 2;
  pen.repetition_penalty = 1.3;
  pen.frequency_penalty = 0.4;
  pen.min_tokens = 6;
  w.initial.push_back({c, pen});
  w.initial.push_back({d, greedy(60)});  // aborted after step 4
  w.abort_after_step[4] = 4;
  // Joins mid-run: logprobs send every row of its steps to the host sampler.
  SamplingParams lp = greedy(9);
  lp.logprobs = 2;
  w.added_after_step[2].push_back({b, lp});
  w.added_after_step[3].push_back({c, sampled(5, 16)});
  // Eos allowed: stories end; those that do stop unpredictably.
  SamplingParams eos = sampled(3, 200);
  w.added_after_step[5].push_back({d, eos});
  return w;
}

}  // namespace

TEST_CASE("async scheduling: the same outputs as the plain loop on a mixed workload") {
  const Workload w = mixed_workload();
  EngineConfig cfg;
  cfg.scheduler.block_size = 4;
  const RunResult plain = run_workload(stories_dir(), cfg, w);
  cfg.async_scheduling = true;
  const RunResult async = run_workload(stories_dir(), cfg, w);
  check_same(plain, async);
  CHECK_FALSE(plain.in_flight_after_first_step);
  CHECK(async.in_flight_after_first_step);  // a step really runs between calls
  CHECK(async.rebuilt_batches > 0);         // the stop-id request left a prepared step
  CHECK(plain.by_label[2].reasons[0] == FinishReason::kStop);
  CHECK(plain.by_label[4].reasons[0] == FinishReason::kAbort);
}

TEST_CASE("async scheduling: chunked prefill and a small token budget") {
  const Workload w = mixed_workload();
  EngineConfig cfg;
  cfg.scheduler.block_size = 4;
  cfg.scheduler.max_num_batched_tokens = 6;  // prompts split over steps, decodes crowd out admissions
  cfg.scheduler.max_num_seqs = 3;
  const RunResult plain = run_workload(stories_dir(), cfg, w);
  cfg.async_scheduling = true;
  check_same(plain, run_workload(stories_dir(), cfg, w));
}

TEST_CASE("async scheduling: preemption under a tiny KV cache gives the same tokens") {
  for (const char* name : {"tiny-llama", "tiny-qwen2-swa"}) {
    CAPTURE(std::string(name));
    const std::string dir = fixture_dir() + "/" + name;
    auto ref = read_json(dir + "/reference.json");
    Workload w;
    for (const auto& r : ref["references"]) w.initial.push_back({ids_of(r["prompt_ids"]), greedy(24)});
    EngineConfig cfg;
    cfg.scheduler.block_size = 4;
    cfg.scheduler.max_model_len = 80;
    cfg.scheduler.num_blocks = 20;
    cfg.scheduler.enable_prefix_caching = false;
    cfg.async_scheduling = true;
    const RunResult async = run_workload(dir, cfg, w);
    CHECK(async.preemptions > 0);
    CHECK(async.all_blocks_free);
    std::size_t i = 0;
    for (const auto& r : ref["references"]) CHECK(async.by_label[i++].tokens[0] == ids_of(r["greedy_ids"]));
  }
}

TEST_CASE("async scheduling: prefix-cache hits while a step is in flight") {
  const std::string dir = fixture_dir() + "/tiny-qwen3";
  auto ref = read_json(dir + "/reference.json");
  const auto& r = ref["references"][2];  // 41-token prompt: 10 full blocks of 4
  Workload w;
  w.initial.push_back({ids_of(r["prompt_ids"]), greedy(24)});
  // Admitted while the first request's decode steps run: its prompt blocks
  // are cached by then.
  w.added_after_step[2].push_back({ids_of(r["prompt_ids"]), greedy(24)});
  EngineConfig cfg;
  cfg.scheduler.block_size = 4;
  cfg.async_scheduling = true;
  const RunResult async = run_workload(dir, cfg, w);
  REQUIRE(async.by_label.size() == 2);
  CHECK(async.by_label[0].tokens[0] == ids_of(r["greedy_ids"]));
  CHECK(async.by_label[1].tokens[0] == ids_of(r["greedy_ids"]));
  CHECK(async.by_label[0].cached == 0);
  CHECK(async.by_label[1].cached == 40);
}
