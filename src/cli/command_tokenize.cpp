// llmctl tokenize: text to token ids and back with a model's tokenizer.json (issue #4).
#include "cli/cli_context.h"

namespace llmctl::cli {

void register_tokenize(CLI::App& app, CliContext& ctx) {
  struct Options {
    std::string model, text, file, decode;
    bool no_special = false, json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text to token ids (or --decode ids to text) with a model's tokenizer");
  cmd->add_option("--model", o->model, "Model folder (or a folder holding tokenizer.json)")->required();
  auto* text = cmd->add_option("--text", o->text, "Text to encode");
  auto* file = cmd->add_option("--file", o->file, "File whose contents to encode");
  auto* decode = cmd->add_option("--decode", o->decode, "Comma-separated ids to decode, e.g. 1,2,3");
  text->excludes(file)->excludes(decode);
  file->excludes(decode);
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS) when encoding; skip them when decoding");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o] { ctx.action = [] { return not_implemented("tokenize", 4); }; });
}

}  // namespace llmctl::cli
