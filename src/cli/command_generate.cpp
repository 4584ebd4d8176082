// llmctl generate: one generation in-process, streamed to stdout (issue #5).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/local_rank_group.h"
#include "cli/tensor_parallel_group.h"
#include "runtime/engine/engine_loader.h"
#include "runtime/tokenizer/tokenizer.h"

namespace llmctl::cli {
namespace {

struct GenerateOptions {
  std::string model, prompt, device = "auto", load_format = "auto";
  int max_tokens = 128, top_k = -1, tp = 1, pp = 1;
  double temperature = 1.0, top_p = 1.0;
  long long seed = -1;
  bool ignore_eos = false, json = false, enforce_eager = false, async_scheduling = false;
};

int run_generate(const GenerateOptions& o, const GlobalOptions& global) {
  if (o.pp > 1) return report_error("generate", Status::unimplemented("pipeline parallel is not supported yet"));
  if (o.tp < 1) return report_error("generate", Status::invalid_argument("--tp must be at least 1"));
  auto tok = tokenizer::Tokenizer::load(o.model);
  if (!tok.is_ok()) return report_error("generate", tok.status());
  const tokenizer::Tokenizer& tokenizer = *tok;
  const std::vector<int32_t> prompt_ids = tokenizer.encode(o.prompt, /*add_special_tokens=*/true);

  // Loading progress on a terminal only; pipes and logs stay clean.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  model::LoadProgressCallback progress;
  if (tty) {
    progress = [](const model::LoadProgress& p) {
      std::fprintf(stderr, "\rloading weights: %.1f / %.1f MiB", static_cast<double>(p.bytes_done) / (1 << 20),
                   static_cast<double>(p.bytes_total) / (1 << 20));
      if (p.bytes_done == p.bytes_total) std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
    };
  }
  engine::EngineConfig config;
  config.device = o.device;
  config.enforce_eager = o.enforce_eager;
  config.async_scheduling = o.async_scheduling;
  config.load_format = o.load_format;
  // Ranks 1..tp-1 as child processes; declared before the engine so the
  // engine (which tells them to stop) goes first.
  std::unique_ptr<LocalRankGroup> ranks;
  if (o.tp > 1) {
    auto device = local_group_device(o.device);
    if (!device.is_ok()) return report_error("generate", device.status());
    LocalRankGroupOptions ro;
    ro.model_dir = o.model;
    ro.tp = o.tp;
    ro.device = *device;
    ro.threads_per_rank = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / o.tp);
    ro.log_level = global.log_level;
    ro.load_format = o.load_format;
    auto group = LocalRankGroup::start(ro);
    if (!group.is_ok()) return report_error("generate", group.status());
    ranks = std::move(group).value();
    config.device = rank_device(ro.device, 0);
    config.num_threads = ro.threads_per_rank;
    config.communicator = ranks->communicator();
    config.cuda_stream = ranks->communicator()->stream();
  }
  config.scheduler.max_num_seqs = 1;
  // Room for this prompt and its output only (the loader caps it at the
  // model's max_position_embeddings): a 128k-token cache would be sized for
  // nothing.
  config.scheduler.max_model_len = static_cast<int32_t>(
      std::min<int64_t>(static_cast<int64_t>(prompt_ids.size()) + std::max(o.max_tokens, 1), INT32_MAX));
  auto detokenize = [&tokenizer](std::span<const int32_t> ids) { return tokenizer.decode(ids, true); };
  auto loaded = engine::load_engine(o.model, config, detokenize, progress, tokenizer.eos_ids());
  if (!loaded.is_ok()) return report_error("generate", loaded.status());

  engine::SamplingParams params;
  params.max_tokens = o.max_tokens;
  params.temperature = o.temperature;
  params.top_p = o.top_p;
  params.top_k = o.top_k;
  params.ignore_eos = o.ignore_eos;
  if (o.seed >= 0) params.seed = static_cast<uint64_t>(o.seed);
  auto id = loaded->engine->add_request(prompt_ids, params);
  if (!id.is_ok()) return report_error("generate", id.status());

  tokenizer::IncrementalDecoder stream(tokenizer, /*skip_special_tokens=*/true);
  engine::RequestOutput final_output;
  while (loaded->engine->has_unfinished()) {
    auto outs = loaded->engine->step();
    if (!outs.is_ok()) return report_error("generate", outs.status());
    for (auto& out : *outs) {
      if (!o.json) {
        for (int32_t t : out.outputs[0].new_token_ids) std::cout << stream.push(t);
        std::cout.flush();
      }
      if (out.finished) final_output = std::move(out);
    }
  }
  const engine::CompletionOutput& c = final_output.outputs.at(0);
  if (o.json) {
    nlohmann::json j;
    j["text"] = c.text;
    j["token_ids"] = c.token_ids;
    j["finish_reason"] = engine::finish_reason_name(c.finish_reason);
    j["usage"] = {{"prompt_tokens", prompt_ids.size()},
                  {"completion_tokens", c.token_ids.size()},
                  {"total_tokens", prompt_ids.size() + c.token_ids.size()}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << stream.finish() << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_generate(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt in-process, streaming as it comes");
  cmd->add_option("--model", o->model, "Hugging Face model folder")->required();
  cmd->add_option("--prompt", o->prompt, "The prompt")->required();
  cmd->add_option("--max-tokens", o->max_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0 for greedy")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Keep the k most likely tokens (-1: all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for reproducible sampling");
  cmd->add_option("--device", o->device, "cpu, cuda, cuda:N, or auto (cuda when a GPU is visible)")->capture_default_str();
  cmd->add_option("--tp,--tensor-parallel-size", o->tp, "Tensor-parallel ranks (processes on this machine)")
      ->capture_default_str();
  cmd->add_option("--pp,--pipeline-parallel-size", o->pp, "Pipeline-parallel stages (only 1 for now)")
      ->capture_default_str();
  add_load_format_option(cmd, o->load_format);
  add_step_flags(cmd, o->enforce_eager, o->async_scheduling);
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past the end-of-sequence token");
  cmd->add_flag("--json", o->json, R"(Print {"text","token_ids","finish_reason","usage"})");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      setup_logging(ctx.global, "engine", /*to_file=*/false);
      return run_generate(*o, ctx.global);
    };
  });
}

}  // namespace llmctl::cli
