// llmctl serve: an OpenAI-compatible server over the engine, local or across the cluster (issues #6, #9).
#include <unistd.h>

#include <cstdio>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <asio.hpp>
#include <fmt/format.h>

#include "cli/cli_context.h"
#include "cli/cluster_rank_group.h"
#include "cli/local_rank_group.h"
#include "cli/tensor_parallel_group.h"
#include "common/build_info.h"
#include "common/logging.h"
#include "common/open_file_limit.h"
#include "runtime/control/daemon.h"
#include "runtime/dist/rank_endpoint.h"
#include "runtime/engine/engine_loader.h"
#include "runtime/engine/scheduler_limits.h"
#include "runtime/server/demo_model.h"
#include "runtime/server/engine_backend.h"
#include "runtime/server/http_server.h"
#include "runtime/server/openai_service.h"
#include "runtime/server/tokenizer_text_codec.h"

namespace llmctl::cli {
namespace {

struct ServeOptions {
  std::string model, served_model_name, host = "0.0.0.0", api_key, device = "auto", address, token, placement = "pack",
      load_format = "auto";
  int port = 8000, max_num_seqs = 0, max_num_batched_tokens = 0, max_model_len = 4096, tp = 1, pp = 1;
  double gpu_memory_utilization = 0.9;
  bool restart = false, enforce_eager = false, async_scheduling = false;
};

// The node rank 0's GPU is pinned to with --address --device cuda: this
// node's agent id when serve shares its state dir, else the host name (an
// agent's default node name).
std::string this_node(const std::string& state_dir) {
  std::ifstream in(control::NodePaths(state_dir).agent_dir + "/node_id");
  std::string id;
  if (in >> id && !id.empty()) return id;
  return dist::local_host_name();
}

int run_serve(const ServeOptions& o, const GlobalOptions& global) {
  if (o.pp > 1) return report_error("serve", Status::unimplemented("pipeline parallel is not supported yet"));
  if (o.tp < 1) return report_error("serve", Status::invalid_argument("--tp must be at least 1"));
  if (o.port < 0 || o.port > 65535) return report_error("serve", Status::invalid_argument("--port must be 0..65535"));
  if (o.max_num_seqs < 0) {
    return report_error("serve", Status::invalid_argument("--max-num-seqs must be at least 1 (or 0: the device's default)"));
  }
  if (o.max_num_batched_tokens < 0) {
    return report_error("serve", Status::invalid_argument(
                                     "--max-num-batched-tokens must be at least 1 (or 0: the device's default)"));
  }
  if (o.max_model_len < 1) return report_error("serve", Status::invalid_argument("--max-model-len must be at least 1"));

  std::string model_dir = o.model;
  std::string name = o.served_model_name;
  if (model_dir.empty()) {
    auto demo = server::find_demo_model();
    if (!demo.is_ok()) return report_error("serve", demo.status());
    model_dir = *demo;
    if (name.empty()) name = "demo";
  }
  if (name.empty()) name = o.model;  // vLLM's default: the --model argument
  auto codec = server::TokenizerTextCodec::load(model_dir);
  if (!codec.is_ok()) return report_error("serve", codec.status().with_context("loading " + model_dir));

  // Each client holds a descriptor; a soft limit of 1024 would cap the server there.
  if (auto limit = raise_open_file_limit(); limit.is_ok()) {
    logger("server")->info("open-file limit: {}", *limit);
  } else {
    logger("server")->warn("{}; keeping the current open-file limit", limit.status().to_string());
  }

  // Ranks 1..tp-1 as child processes, declared before the backend so the
  // engine (which tells them to stop) is destroyed first.
  std::unique_ptr<LocalRankGroup> ranks;
  std::unique_ptr<ClusterRankGroup> cluster_ranks;
  engine::EngineConfig config;
  config.device = o.device;
  config.gpu_memory_utilization = o.gpu_memory_utilization;
  config.enforce_eager = o.enforce_eager;
  config.async_scheduling = o.async_scheduling;
  config.load_format = o.load_format;
  ClusterRankGroupOptions co;  // kept: --restart places the same group again
  LocalRankGroupOptions ro;    // kept: --restart starts the same local ranks again
  if (o.tp > 1 && !o.address.empty()) {
    auto access = control::resolve_cluster_access(o.address, o.token, control::NodePaths(resolve_state_dir(global)));
    if (!access.is_ok()) return report_error("serve", access.status());
    co.access = *access;
    co.model_dir = model_dir;
    co.name = fmt::format("serve {} tp={} (rank 0 on {})", name, o.tp, dist::local_host_name());
    co.tp = o.tp;
    auto device = local_group_device(o.device);
    if (!device.is_ok()) return report_error("serve", device.status());
    co.device = *device;
    co.rank0_node = this_node(resolve_state_dir(global));
    co.threads_per_rank = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / o.tp);
    co.strategy = o.placement == "spread" ? "SPREAD" : "PACK";
    co.log_level = global.log_level;
    co.load_format = o.load_format;
    std::fprintf(stderr, "placing tensor-parallel ranks 1..%d on the cluster at %s ...\n", o.tp - 1,
                 access->address.c_str());
    auto group = ClusterRankGroup::start(co);
    if (!group.is_ok()) return report_error("serve", group.status());
    cluster_ranks = std::move(group).value();
    config.device = cluster_ranks->device();
    config.num_threads = co.threads_per_rank;
    config.communicator = cluster_ranks->communicator();
    config.cuda_stream = cluster_ranks->communicator()->stream();
  } else if (o.tp > 1) {
    auto device = local_group_device(o.device);
    if (!device.is_ok()) return report_error("serve", device.status());
    ro.model_dir = model_dir;
    ro.tp = o.tp;
    ro.device = *device;
    ro.threads_per_rank = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / o.tp);
    ro.log_level = global.log_level;
    ro.load_format = o.load_format;
    auto group = LocalRankGroup::start(ro);
    if (!group.is_ok()) return report_error("serve", group.status());
    ranks = std::move(group).value();
    config.device = rank_device(ro.device, 0);
    config.num_threads = ro.threads_per_rank;
    config.communicator = ranks->communicator();
    config.cuda_stream = ranks->communicator()->stream();
  }

  asio::io_context io;
  server::EngineBackend backend;
  server::OpenAiServiceOptions so;
  so.served_model_name = name;
  so.model_root = model_dir;
  so.api_key = o.api_key;
  so.max_model_len = o.max_model_len;
  so.version = std::string(build_info().version);
  server::OpenAiService service(io, so, **codec, backend);
  server::HttpServer http(io, server::HttpServerOptions{}, service);
  if (Status st = http.listen(o.host, static_cast<uint16_t>(o.port)); !st.is_ok()) return report_error("serve", st);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    http.stop();
    io.stop();
  });
  // /health answers 503 while the weights load.
  std::thread io_thread([&io] { io.run(); });

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::fprintf(stderr, "loading %s%s ...\n", model_dir.c_str(),
               o.load_format == "dummy" ? " with random weights (--load-format dummy)" : "");
  model::LoadProgressCallback progress = [tty](const model::LoadProgress& p) {
    if (!tty) return;
    std::fprintf(stderr, "\rloading weights: %.1f / %.1f MiB", static_cast<double>(p.bytes_done) / (1 << 20),
                 static_cast<double>(p.bytes_total) / (1 << 20));
    if (p.bytes_done == p.bytes_total) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  };
  config.scheduler.max_num_seqs = o.max_num_seqs;
  config.scheduler.max_model_len = o.max_model_len;
  // 0: resolved by the engine once it knows the device (scheduler_limits.h).
  config.scheduler.max_num_batched_tokens = o.max_num_batched_tokens;
  auto loaded = engine::load_engine(model_dir, config, {}, progress, (*codec)->tokenizer().eos_ids());
  if (!loaded.is_ok()) {
    backend.mark_dead();
    asio::post(io, [&] { http.stop(); io.stop(); });
    io_thread.join();
    Status st = loaded.status().with_context("loading " + model_dir);
    // A worker that failed to load its shard says why in its node's bundle log.
    if (cluster_ranks) st = st.with_context(cluster_ranks->describe_ranks());
    return report_error("serve", st);
  }
  // The loader clamps --max-model-len to the model's own limit.
  // A --restart reloads with the limits this load resolved.
  const engine::SchedulerConfig& resolved = loaded->engine->scheduler().config();
  int max_len = resolved.max_model_len;
  config.scheduler.max_num_seqs = resolved.max_num_seqs;
  config.scheduler.max_num_batched_tokens = std::max(resolved.max_num_batched_tokens, max_len);
  asio::post(io, [&service, max_len] { service.set_max_model_len(max_len); });
  backend.start(std::move(loaded->engine), loaded->eos_ids);

  // A rank that exits ends the engine: /health turns 503 at once, the other
  // ranks (stuck in collectives with it) are killed, and the next step fails
  // its requests with the collective's error.
  std::atomic<bool> watching{ranks != nullptr || cluster_ranks != nullptr};
  // --restart: the old engine and its ranks go, then the ranks are started
  // again (placed again across the cluster: maybe on other nodes and GPUs)
  // and the engine loaded until that works (every 2 s) or serve stops;
  // /health says 503 with the cause meanwhile.
  const bool across_cluster = cluster_ranks != nullptr;
  auto restart_engine = [&]() -> bool {
    backend.retire();
    cluster_ranks.reset();
    ranks.reset();
    for (int attempt = 1; watching; ++attempt) {
      std::fprintf(stderr, "llmctl serve: %s the engine's ranks again (attempt %d) ...\n",
                   across_cluster ? "placing" : "starting", attempt);
      engine::EngineConfig again = config;
      std::unique_ptr<ClusterRankGroup> new_cluster;
      std::unique_ptr<LocalRankGroup> new_local;
      Status failed;
      if (across_cluster) {
        if (auto group = ClusterRankGroup::start(co); group.is_ok()) {
          new_cluster = std::move(group).value();
          again.device = new_cluster->device();  // placed again: maybe another GPU of this node
          again.communicator = new_cluster->communicator();
        } else {
          failed = group.status();
        }
      } else if (auto group = LocalRankGroup::start(ro); group.is_ok()) {
        new_local = std::move(group).value();
        again.communicator = new_local->communicator();
      } else {
        failed = group.status();
      }
      if (failed.is_ok()) {
        again.cuda_stream = again.communicator->stream();
        auto reloaded = engine::load_engine(model_dir, again, {}, {}, (*codec)->tokenizer().eos_ids());
        if (reloaded.is_ok()) {
          cluster_ranks = std::move(new_cluster);
          ranks = std::move(new_local);
          backend.start(std::move(reloaded->engine), reloaded->eos_ids);
          std::fprintf(stderr, "llmctl serve: the engine serves again%s\n",
                       across_cluster ? fmt::format(" (placement group {})", cluster_ranks->group_id()).c_str() : "");
          return true;
        }
        failed = reloaded.status();
      }
      logger("serve")->error("starting the engine again: {}", failed.message());
      std::fprintf(stderr, "llmctl serve: starting the engine again: %s\n", failed.message().c_str());
      for (int i = 0; i < 40 && watching; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  std::thread rank_watcher;
  if (watching) {
    rank_watcher = std::thread([&] {
      auto poll_exited = [&] { return ranks ? ranks->poll_exited() : cluster_ranks->poll_exited(); };
      auto kill_all = [&] { ranks ? ranks->kill_all() : cluster_ranks->kill_all(); };
      while (watching) {
        std::optional<std::string> exited = poll_exited();
        if (exited) {
          logger("serve")->error("{}; the engine stops serving", *exited);
          std::fprintf(stderr, "llmctl serve: %s; the engine stops serving\n", exited->c_str());
          backend.mark_dead(*exited);
        }
        if (exited || backend.state() == server::BackendState::kDead) {
          kill_all();
          if (o.restart && restart_engine()) continue;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }

  std::string shown_host = o.host == "0.0.0.0" ? "127.0.0.1" : o.host;
  std::string url = fmt::format("http://{}:{}", shown_host, http.port());
  std::fprintf(stdout,
               "llmctl serve: %s ready at %s/v1 (max_model_len %d, max_num_seqs %d, max_num_batched_tokens %d)\n"
               "  curl %s/v1/completions -H 'Content-Type: application/json'%s \\\n"
               "    -d '{\"model\": \"%s\", \"prompt\": \"The meaning of life is\", \"max_tokens\": 32}'\n",
               name.c_str(), url.c_str(), max_len, config.scheduler.max_num_seqs,
               config.scheduler.max_num_batched_tokens, url.c_str(),
               o.api_key.empty() ? "" : " -H 'Authorization: Bearer $LLMCTL_API_KEY'", name.c_str());
  std::fflush(stdout);
  io_thread.join();
  watching = false;
  if (rank_watcher.joinable()) rank_watcher.join();
  return kExitOk;
}

}  // namespace

void register_serve(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model with an OpenAI-compatible API (vLLM's flags, same names)");
  cmd->add_option("--model", o->model, "Hugging Face model folder (default: the embedded demo model)");
  cmd->add_option("--served-model-name", o->served_model_name, "Name clients use in \"model\" (default: the folder name)");
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on")->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Require `Authorization: Bearer KEY` on /v1/*")->envname("LLMCTL_API_KEY");
  cmd->add_option("--max-num-seqs", o->max_num_seqs,
                  "Most sequences in one batch (default: " + engine::default_max_num_seqs_help() + ")");
  cmd->add_option("--max-num-batched-tokens", o->max_num_batched_tokens,
                  "Most tokens in one step (default: " + engine::default_max_num_batched_tokens_help() + ")");
  cmd->add_option("--max-model-len", o->max_model_len, "Longest prompt + output in tokens")->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", o->gpu_memory_utilization, "Share of GPU memory for weights + KV cache")
      ->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda, or auto")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--tp,--tensor-parallel-size", o->tp, "Tensor-parallel ranks")->capture_default_str();
  cmd->add_option("--pp,--pipeline-parallel-size", o->pp, "Pipeline-parallel stages (only 1 for now)")->capture_default_str();
  cmd->add_option("--address", o->address,
                  "Place ranks 1..tp-1 on this cluster (HEAD:PORT); the model and llmctl must be at the same paths on every node");
  cmd->add_option("--placement", o->placement, "How --address spreads the ranks over nodes")
      ->check(CLI::IsMember({"pack", "spread"}))
      ->capture_default_str();
  cmd->add_option("--token", o->token, "Cluster token for --address")->envname("LLMCTL_TOKEN");
  add_load_format_option(cmd, o->load_format);
  add_step_flags(cmd, o->enforce_eager, o->async_scheduling);
  cmd->add_flag("--restart", o->restart, "With --tp: start (with --address: place) the ranks and engine again when a rank dies");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      setup_logging(ctx.global, "serve", /*to_file=*/false);
      return run_serve(*o, ctx.global);
    };
  });
}

}  // namespace llmctl::cli
