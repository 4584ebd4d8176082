// llmctl tokenize: text to token ids and back with a model's tokenizer.json (issue #4).
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "runtime/tokenizer/tokenizer.h"

namespace llmctl::cli {

namespace {

struct TokenizeOptions {
  std::string model, text, file, decode;
  bool have_text = false;
  bool no_special = false, json = false;
};

Result<std::vector<int32_t>> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) return Status::invalid_argument("--decode: empty id in '" + list + "'");
    item = item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX) {
      return Status::invalid_argument("--decode: '" + item + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& o) {
  auto tok = tokenizer::Tokenizer::load(o.model);
  if (!tok.is_ok()) return report_error("tokenize", tok.status());
  if (!o.decode.empty()) {
    auto ids = parse_ids(o.decode);
    if (!ids.is_ok()) return report_error("tokenize", ids.status());
    for (int32_t id : *ids) {
      if (id >= tok->vocab_size()) {
        return report_error("tokenize", Status::invalid_argument("--decode: id " + std::to_string(id) +
                                                                 " is outside the vocabulary of " +
                                                                 std::to_string(tok->vocab_size())));
      }
    }
    const std::string text = tok->decode(*ids, o.no_special);
    if (o.json) {
      std::cout << nlohmann::json{{"text", text}, {"ids", *ids}}.dump() << "\n";
    } else {
      std::cout << text << "\n";
    }
    return kExitOk;
  }
  std::string text = o.text;
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) return report_error("tokenize", Status::not_found("--file " + o.file + ": cannot open"));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else if (!o.have_text) {
    return report_error("tokenize", Status::invalid_argument("give --text, --file or --decode"));
  }
  const std::vector<int32_t> ids = tok->encode(text, !o.no_special);
  if (o.json) {
    nlohmann::json tokens = nlohmann::json::array();
    for (int32_t id : ids) tokens.push_back(tok->id_to_token(id));
    // Token strings may be partial UTF-8 only for byte-fallback pieces, which
    // are written as "<0xAB>"; replace anything invalid rather than fail.
    std::cout << nlohmann::json{{"ids", ids}, {"tokens", tokens}, {"count", ids.size()}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_tokenize(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text to token ids (or --decode ids to text) with a model's tokenizer");
  cmd->add_option("--model", o->model, "Model folder (or a folder holding tokenizer.json)")->required();
  auto* text = cmd->add_option("--text", o->text, "Text to encode");
  auto* file = cmd->add_option("--file", o->file, "File whose contents to encode");
  auto* decode = cmd->add_option("--decode", o->decode, "Comma-separated ids to decode, e.g. 1,2,3");
  text->excludes(file)->excludes(decode);
  file->excludes(decode);
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS) when encoding; skip them when decoding");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&ctx, o, text] {
    o->have_text = text->count() > 0;
    ctx.action = [o] { return run_tokenize(*o); };
  });
}

}  // namespace llmctl::cli
