// llmctl serve: an OpenAI-compatible server over the engine, local or across the cluster (issues #6, #9).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_serve(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string model, served_model_name, host = "0.0.0.0", api_key, device = "auto", address, token;
    int port = 8000, max_num_seqs = 64, max_num_batched_tokens = 0, max_model_len = 4096, tp = 1, pp = 1;
    double gpu_memory_utilization = 0.9;
    bool restart = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model with an OpenAI-compatible API (vLLM's flags, same names)");
  cmd->add_option("--model", o->model, "Hugging Face model folder (default: the embedded demo model)");
  cmd->add_option("--served-model-name", o->served_model_name, "Name clients use in \"model\" (default: the folder name)");
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on")->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Require `Authorization: Bearer KEY` on /v1/*")->envname("LLMCTL_API_KEY");
  cmd->add_option("--max-num-seqs", o->max_num_seqs, "Most sequences in one batch")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", o->max_num_batched_tokens, "Most tokens in one step (default: max-model-len)");
  cmd->add_option("--max-model-len", o->max_model_len, "Longest prompt + output in tokens")->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", o->gpu_memory_utilization, "Share of GPU memory for weights + KV cache")
      ->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda, or auto")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--tp,--tensor-parallel-size", o->tp, "Tensor-parallel ranks")->capture_default_str();
  cmd->add_option("--pp,--pipeline-parallel-size", o->pp, "Pipeline-parallel stages (only 1 for now)")->capture_default_str();
  cmd->add_option("--address", o->address, "Place the ranks on this cluster's GPUs (HEAD:PORT)");
  cmd->add_option("--token", o->token, "Cluster token for --address")->envname("LLMCTL_TOKEN");
  cmd->add_flag("--restart", o->restart, "Place the engine again when a rank dies");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("serve", 6); }; });
}

}  // namespace llmctl::cli
