// llmctl worker (hidden): one tensor-parallel rank other than 0. Started by
// `generate --tp N` / `serve --tp N` (and later by agents); joins the group
// through the rendezvous store, loads its shard, and runs the steps rank 0
// broadcasts until rank 0 stops it (issue #9).
#include <signal.h>
#include <sys/prctl.h>

#include <chrono>

#include "cli/cli_context.h"
#include "cli/cluster_rank_group.h"
#include "common/logging.h"
#include "cli/tensor_parallel_group.h"
#include "runtime/dist/rendezvous_store.h"
#include "runtime/engine/rank_worker.h"

namespace llmctl::cli {
namespace {

struct WorkerOptions {
  std::string model, rendezvous, device = "cpu", interface, state_dir, load_format = "auto";
  int rank = 1, tp = 2, threads = 1;
  // Rank 0 may sit idle (a server with no requests) for any time between
  // steps, so the wait for the next step is not bounded here: a rank 0 that
  // is gone closes its connections (and a local parent's death kills this
  // process through PR_SET_PDEATHSIG).
  long long timeout_ms = 24LL * 3600 * 1000;
};

int run_worker(const WorkerOptions& o) {
  const std::string who = "rank " + std::to_string(o.rank) + " of " + std::to_string(o.tp);
  if (o.tp < 2 || o.rank < 1 || o.rank >= o.tp) {
    return report_error("worker", Status::invalid_argument("--rank must be in [1, --tp) and --tp at least 2"));
  }
  auto store = open_rank_store(o.rendezvous, o.state_dir);
  if (!store.is_ok()) return report_error("worker", store.status().with_context(who));
  TensorParallelJoin join;
  join.rank = o.rank;
  join.tp = o.tp;
  join.device = o.device;
  join.interface = o.interface;
  if (o.interface.empty()) join.hostname = store->local_address;
  join.timeout = std::chrono::milliseconds(o.timeout_ms);
  auto comm = join_tensor_parallel_group(join, *store->store);
  if (!comm.is_ok()) return report_error("worker", comm.status().with_context(who + ": joining the group"));
  engine::EngineConfig config;
  config.device = o.device;
  config.num_threads = o.threads;
  config.load_format = o.load_format;
  config.cuda_stream = (*comm)->stream();
  Status st = engine::run_rank_worker(o.model, config, **comm);
  if (!st.is_ok()) return report_error("worker", st);
  logger("worker")->info("{}: rank 0 stopped the group", who);
  return kExitOk;
}

}  // namespace

void register_worker(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<WorkerOptions>();
  CLI::App* cmd = app.add_subcommand("worker", "run one engine rank");
  cmd->group("");  // hidden from --help and completions
  cmd->add_option("--model", o->model, "Hugging Face model folder")->required();
  cmd->add_option("--rank", o->rank, "This rank (1 .. tp-1; rank 0 runs the scheduler)")->required();
  cmd->add_option("--tp", o->tp, "Tensor-parallel ranks in the group")->required();
  cmd->add_option("--rendezvous", o->rendezvous, "Directory of the group's file store, or head:HOST:PORT/ENGINE")->required();
  cmd->add_option("--device", o->device, "cpu or cuda:N (the GPU this rank drives)");
  cmd->add_option("--threads", o->threads, "CPU backend threads");
  add_load_format_option(cmd, o->load_format);
  cmd->add_option("--interface", o->interface, "NIC for collectives (GLOO_SOCKET_IFNAME)")->envname("GLOO_SOCKET_IFNAME");
  cmd->add_option("--timeout-ms", o->timeout_ms, "Rendezvous and collective time-out");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      // A worker started by hand (not by a local rank 0) dies with its parent too.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      setup_logging(ctx.global, "worker", /*to_file=*/false);
      o->state_dir = resolve_state_dir(ctx.global);  // its cluster.json has the token
      return run_worker(*o);
    };
  });
}

}  // namespace llmctl::cli
