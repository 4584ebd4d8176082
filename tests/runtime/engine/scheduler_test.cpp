// Scheduler on its own (no model): the limits, chunked prefill mixed with
// decodes in one step, sequences joining and leaving each step, preemption by
// recompute, cancellation. "Running the model" is simulated the way Engine
// does it: postprocess(), then one new token for each sequence that samples.
#include <doctest/doctest.h>

#include <memory>

#include "runtime/engine/scheduler.h"

using namespace llmctl::engine;

namespace {

struct Harness {
  explicit Harness(SchedulerConfig config) : sched(config) {}

  Sequence* add(int32_t prompt_len, int32_t first_token = 100) {
    auto s = std::make_unique<Sequence>();
    s->seq_id = seqs.size() + 1;
    s->params = &params;
    for (int32_t i = 0; i < prompt_len; ++i) s->token_ids.push_back(first_token + i);
    s->num_prompt_tokens = prompt_len;
    sched.add(s.get());
    seqs.push_back(std::move(s));
    return seqs.back().get();
  }

  // One engine step without the model.
  SchedulerOutput step() {
    SchedulerOutput out = sched.schedule();
    sched.postprocess(out);
    for (const ScheduledSequence& s : out.scheduled) {
      if (s.sample) s.seq->token_ids.push_back(7);
    }
    return out;
  }

  const ScheduledSequence* find(const SchedulerOutput& out, const Sequence* seq) {
    for (const auto& s : out.scheduled) {
      if (s.seq == seq) return &s;
    }
    return nullptr;
  }

  SamplingParams params;
  Scheduler sched;
  std::vector<std::unique_ptr<Sequence>> seqs;
};

SchedulerConfig config(int32_t max_seqs, int32_t max_tokens, int32_t num_blocks, int32_t block_size = 4) {
  SchedulerConfig c;
  c.max_num_seqs = max_seqs;
  c.max_num_batched_tokens = max_tokens;
  c.max_model_len = 32;
  c.block_size = block_size;
  c.num_blocks = num_blocks;
  c.enable_prefix_caching = false;
  return c;
}

}  // namespace

TEST_CASE("scheduler: max_num_seqs bounds the running set; the rest wait") {
  Harness h(config(2, 100, 64));
  Sequence* a = h.add(5);
  Sequence* b = h.add(5);
  Sequence* c = h.add(5);
  SchedulerOutput out = h.step();
  CHECK(out.scheduled.size() == 2);
  CHECK(h.find(out, a) != nullptr);
  CHECK(h.find(out, b) != nullptr);
  CHECK(h.find(out, c) == nullptr);
  CHECK(h.sched.num_running() == 2);
  CHECK(h.sched.num_waiting() == 1);
  CHECK(c->status == SequenceStatus::kWaiting);
  out = h.step();  // decodes only; c still waits
  CHECK(out.scheduled.size() == 2);
  CHECK(out.num_batched_tokens == 2);
}

TEST_CASE("scheduler: max_num_batched_tokens chunks prefills and mixes them with decodes") {
  Harness h(config(8, 10, 64));
  Sequence* a = h.add(6);
  Sequence* b = h.add(9);
  SchedulerOutput out = h.step();
  CHECK(out.num_batched_tokens == 10);
  REQUIRE(h.find(out, a) != nullptr);
  CHECK(h.find(out, a)->num_new_tokens == 6);
  CHECK(h.find(out, a)->sample);
  REQUIRE(h.find(out, b) != nullptr);
  CHECK(h.find(out, b)->num_new_tokens == 4);  // what the budget leaves
  CHECK_FALSE(h.find(out, b)->sample);         // not at the end of the prompt
  CHECK(b->num_computed_tokens == 4);
  CHECK(a->num_tokens() == 7);

  // Next step: a decodes (1 token) in the same batch as b's next chunk.
  out = h.step();
  REQUIRE(out.scheduled.size() == 2);
  CHECK(h.find(out, a)->num_new_tokens == 1);
  CHECK(h.find(out, a)->sample);
  CHECK(h.find(out, b)->num_new_tokens == 5);
  CHECK(h.find(out, b)->sample);
  CHECK(out.num_batched_tokens == 6);
  CHECK(b->num_tokens() == 10);

  // A prompt longer than the whole budget is chunked over several steps.
  Sequence* c = h.add(25);
  out = h.step();
  CHECK(h.find(out, c)->num_new_tokens == 8);  // 10 - 2 decodes
  out = h.step();
  CHECK(h.find(out, c)->num_new_tokens == 8);
  out = h.step();
  CHECK(h.find(out, c)->num_new_tokens == 8);
  CHECK_FALSE(h.find(out, c)->sample);
  out = h.step();
  CHECK(h.find(out, c)->num_new_tokens == 1);
  CHECK(h.find(out, c)->sample);
  for (const auto& s : out.scheduled) CHECK(s.num_new_tokens >= 1);
}

TEST_CASE("scheduler: sequences join and leave at every step") {
  Harness h(config(2, 100, 64));
  Sequence* a = h.add(3);
  Sequence* b = h.add(3);
  h.step();
  Sequence* c = h.add(3);
  SchedulerOutput out = h.step();
  CHECK(h.find(out, c) == nullptr);  // max_num_seqs reached
  h.sched.remove(a);                 // a finishes
  out = h.step();
  CHECK(h.find(out, a) == nullptr);
  REQUIRE(h.find(out, c) != nullptr);  // c joins in the very next step
  CHECK(h.find(out, c)->num_new_tokens == 3);
  CHECK(h.find(out, b)->num_new_tokens == 1);
  h.sched.remove(b);
  h.sched.remove(c);
  CHECK_FALSE(h.sched.has_unfinished());
  CHECK(h.step().empty());
}

TEST_CASE("scheduler: running out of blocks preempts the newest sequence, which recomputes later") {
  // 4 blocks of 2 tokens; two 3-token prompts take 2 blocks each.
  Harness h(config(8, 100, 4, 2));
  Sequence* a = h.add(3, 10);
  Sequence* b = h.add(3, 20);
  SchedulerOutput out = h.step();
  CHECK(out.scheduled.size() == 2);
  CHECK(h.sched.block_manager().num_free_blocks() == 0);
  // a and b now hold 4 tokens each (fit in 2 blocks): the decode step fits.
  out = h.step();
  CHECK(out.num_preempted == 0);
  // 5 tokens need a third block: a's decode preempts b.
  out = h.step();
  CHECK(out.num_preempted == 1);
  CHECK(h.sched.num_preemptions() == 1);
  REQUIRE(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].seq == a);
  CHECK(b->status == SequenceStatus::kWaiting);
  CHECK(b->block_table.empty());
  CHECK(b->num_computed_tokens == 0);
  CHECK(b->num_tokens() == 5);  // keeps its outputs; only the cache is lost
  CHECK(h.sched.num_waiting() == 1);

  // When a leaves, b comes back and recomputes prompt + outputs in one chunk.
  h.sched.remove(a);
  CHECK(h.sched.block_manager().num_free_blocks() == 4);
  out = h.step();
  REQUIRE(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].seq == b);
  CHECK(out.scheduled[0].num_new_tokens == 5);
  CHECK(out.scheduled[0].sample);
}

TEST_CASE("scheduler: a lone sequence that cannot grow preempts itself; waiting ones wait for blocks") {
  Harness h(config(8, 100, 3, 2));
  Sequence* a = h.add(6);  // 3 blocks: the whole cache
  SchedulerOutput out = h.step();
  CHECK(out.scheduled.size() == 1);
  Sequence* b = h.add(2);
  out = h.step();  // a needs a 4th block for token 7: preempts itself
  CHECK(out.num_preempted == 1);
  CHECK(out.scheduled.empty());
  CHECK(a->status == SequenceStatus::kWaiting);
  CHECK(b->status == SequenceStatus::kWaiting);
  CHECK(h.sched.block_manager().num_free_blocks() == 3);
}

TEST_CASE("scheduler: cancelling frees the blocks at once") {
  Harness h(config(8, 100, 16));
  Sequence* a = h.add(10);
  Sequence* b = h.add(5);
  h.step();
  CHECK(h.sched.block_manager().num_free_blocks() == 16 - 3 - 2);
  h.sched.remove(a);  // cancelled mid-generation
  CHECK(h.sched.block_manager().num_free_blocks() == 16 - 2);
  CHECK(a->block_table.empty());
  SchedulerOutput out = h.step();
  CHECK(h.find(out, a) == nullptr);
  CHECK(h.find(out, b) != nullptr);
  // A waiting sequence can be cancelled too.
  Sequence* c = h.add(4);
  h.sched.remove(c);
  CHECK(h.sched.num_waiting() == 0);
  h.sched.remove(b);
  CHECK(h.sched.block_manager().num_free_blocks() == 16);
  CHECK_FALSE(h.sched.has_unfinished());
}

TEST_CASE("scheduler: prefix-cache hits are skipped, the rest is computed") {
  SchedulerConfig c = config(8, 100, 16);
  c.enable_prefix_caching = true;
  Harness h(c);
  Sequence* a = h.add(10, 50);
  h.step();
  h.sched.remove(a);
  Sequence* b = h.add(10, 50);
  SchedulerOutput out = h.step();
  REQUIRE(out.scheduled.size() == 1);
  CHECK(b->num_cached_tokens == 8);
  CHECK(out.scheduled[0].num_new_tokens == 2);
  CHECK(out.num_batched_tokens == 2);
}

TEST_CASE("scheduler config: validate names the setting") {
  SchedulerConfig c = config(8, 100, 16);
  CHECK(c.validate().is_ok());
  c.max_num_seqs = 0;
  CHECK(c.validate().message().find("max_num_seqs") != std::string::npos);
  c = config(8, 0, 16);
  CHECK(c.validate().message().find("max_num_batched_tokens") != std::string::npos);
  c = config(8, 100, 7);  // 28 tokens < max_model_len 32
  CHECK(c.validate().message().find("max_model_len") != std::string::npos);
}

TEST_CASE("scheduler: a running sequence with nothing to compute keeps its blocks and is skipped") {
  // What async scheduling leaves behind: a sequence whose step in flight ends
  // it gets no placeholder token, so the next schedule has nothing for it.
  Harness h(config(8, 100, 16));
  Sequence* a = h.add(5);
  Sequence* b = h.add(3);
  h.step();  // both prefill and sample
  h.sched.postprocess(h.sched.schedule());  // both decode; only b gets its next token
  b->token_ids.push_back(7);
  const std::size_t a_blocks = a->block_table.size();
  SchedulerOutput out = h.sched.schedule();
  CHECK(h.find(out, a) == nullptr);
  REQUIRE(h.find(out, b) != nullptr);
  CHECK(h.find(out, b)->num_new_tokens == 1);
  CHECK(out.num_batched_tokens == 1);
  CHECK(a->block_table.size() == a_blocks);
  CHECK(h.sched.num_running() == 2);
  // Finished while its step ran: postprocess leaves it alone.
  a->status = SequenceStatus::kFinished;
  const int32_t a_computed = a->num_computed_tokens;
  SchedulerOutput both;
  both.scheduled.push_back({a, 1, true});
  h.sched.postprocess(both);
  CHECK(a->num_computed_tokens == a_computed);
}
