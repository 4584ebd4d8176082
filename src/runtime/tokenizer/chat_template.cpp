#include "runtime/tokenizer/chat_template.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/tokenizer/jinja_template.h"

namespace llmctl::tokenizer {
namespace {

namespace fs = std::filesystem;

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<nlohmann::json> read_json(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, read_file(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument(path.string() + ": not valid JSON");
  return j;
}

// A template set from a "chat_template" JSON value: a string, or a list of
// {"name": ..., "template": ...}.
Status templates_from_json(const nlohmann::json& value, const std::string& origin,
                           std::map<std::string, std::string>& out) {
  if (value.is_string()) {
    out["default"] = value.get<std::string>();
    return Status::ok();
  }
  if (value.is_array()) {
    for (const auto& entry : value) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
          !entry.contains("template") || !entry["template"].is_string()) {
        return Status::invalid_argument(origin + ": chat_template list entries must be {\"name\": string, \"template\": string}");
      }
      out[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
    }
    return Status::ok();
  }
  if (value.is_null()) return Status::ok();
  return Status::invalid_argument(origin + ": chat_template must be a string or a list of named templates");
}

// bos_token and friends: strings, or AddedToken objects {"content": ...}.
std::map<std::string, std::string> special_tokens_from(const nlohmann::json& config) {
  std::map<std::string, std::string> tokens;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"}) {
    if (!config.contains(key)) continue;
    const auto& v = config[key];
    if (v.is_string()) {
      tokens[key] = v.get<std::string>();
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      tokens[key] = v["content"].get<std::string>();
    }
  }
  return tokens;
}

}  // namespace

Result<ChatTemplate> ChatTemplate::load(const std::string& model_dir) { return load(model_dir, ""); }

Result<ChatTemplate> ChatTemplate::load(const std::string& model_dir, const std::string& template_file) {
  fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::not_found("model folder " + model_dir + " does not exist");
  fs::path config_path = dir / "tokenizer_config.json";
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(config_path, ec)) {
    ASSIGN_OR_RETURN(config, read_json(config_path));
    if (!config.is_object()) return Status::invalid_argument(config_path.string() + ": expected a JSON object");
  }
  std::map<std::string, std::string> sources;
  std::string origin;
  if (!template_file.empty()) {
    fs::path p(template_file);
    origin = p.string();
    if (p.extension() == ".json") {
      ASSIGN_OR_RETURN(nlohmann::json j, read_json(p));
      if (!j.is_object() || !j.contains("chat_template")) {
        return Status::invalid_argument(origin + ": expected an object with a \"chat_template\" key");
      }
      RETURN_IF_ERROR(templates_from_json(j["chat_template"], origin, sources));
    } else {
      ASSIGN_OR_RETURN(sources["default"], read_file(p));
    }
  } else if (fs::exists(dir / "chat_template.jinja", ec) || fs::is_directory(dir / "additional_chat_templates", ec)) {
    // Separate template files take priority over tokenizer_config.json, as in transformers.
    origin = (dir / "chat_template.jinja").string();
    if (fs::exists(dir / "chat_template.jinja", ec)) {
      ASSIGN_OR_RETURN(sources["default"], read_file(dir / "chat_template.jinja"));
    }
    if (fs::is_directory(dir / "additional_chat_templates", ec)) {
      for (const auto& entry : fs::directory_iterator(dir / "additional_chat_templates", ec)) {
        if (entry.path().extension() != ".jinja") continue;
        ASSIGN_OR_RETURN(sources[entry.path().stem().string()], read_file(entry.path()));
      }
    }
  } else if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    origin = config_path.string();
    RETURN_IF_ERROR(templates_from_json(config["chat_template"], origin, sources));
  } else if (fs::exists(dir / "chat_template.json", ec)) {
    origin = (dir / "chat_template.json").string();
    ASSIGN_OR_RETURN(nlohmann::json j, read_json(dir / "chat_template.json"));
    if (!j.is_object() || !j.contains("chat_template")) {
      return Status::invalid_argument(origin + ": expected an object with a \"chat_template\" key");
    }
    RETURN_IF_ERROR(templates_from_json(j["chat_template"], origin, sources));
  }
  if (sources.empty()) {
    return Status::not_found("model folder " + model_dir +
                             " has no chat template (looked for chat_template.jinja, \"chat_template\" in "
                             "tokenizer_config.json, chat_template.json); pass a template file explicitly");
  }
  return from_parts(std::move(sources), special_tokens_from(config), std::move(origin));
}

Result<ChatTemplate> ChatTemplate::from_string(const std::string& source,
                                               std::map<std::string, std::string> special_tokens, std::string origin) {
  return from_parts({{"default", source}}, std::move(special_tokens), std::move(origin));
}

Result<ChatTemplate> ChatTemplate::from_parts(std::map<std::string, std::string> sources,
                                              std::map<std::string, std::string> special, std::string origin) {
  ChatTemplate t;
  t.special_tokens_ = std::move(special);
  t.origin_ = origin;
  for (const auto& [name, source] : sources) {
    std::string where = sources.size() == 1 ? origin : origin + "[" + name + "]";
    ASSIGN_OR_RETURN(auto parsed, jinja::Template::parse(source, where));
    t.templates_[name] = std::move(parsed);
  }
  return t;
}

std::vector<std::string> ChatTemplate::template_names() const {
  std::vector<std::string> names;
  for (const auto& [name, t] : templates_) names.push_back(name);
  return names;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages, const ChatRenderOptions& opts) const {
  if (!messages.is_array()) return Status::invalid_argument("messages must be a JSON array of message objects");
  if (messages.empty()) return Status::invalid_argument("cannot apply the chat template to an empty conversation");
  if (!opts.kwargs.is_object()) return Status::invalid_argument("template kwargs must be a JSON object");
  if (!opts.tools.is_null() && !opts.tools.is_array()) return Status::invalid_argument("tools must be a JSON array");

  // Pick the template as transformers' get_chat_template does.
  const jinja::Template* tpl = nullptr;
  if (!opts.template_name.empty()) {
    auto it = templates_.find(opts.template_name);
    if (it == templates_.end()) return Status::not_found("no chat template named '" + opts.template_name + "'");
    tpl = it->second.get();
  } else if (templates_.size() == 1) {
    tpl = templates_.begin()->second.get();
  } else if (!opts.tools.is_null() && templates_.count("tool_use")) {
    tpl = templates_.at("tool_use").get();
  } else if (templates_.count("default")) {
    tpl = templates_.at("default").get();
  } else {
    std::string names;
    for (const auto& [name, t] : templates_) names += (names.empty() ? "" : ", ") + name;
    return Status::invalid_argument("this model has several chat templates and none is 'default'; pick one of: " + names);
  }

  // transformers drops keys whose value is None (content: null from OpenAI
  // clients) and copies reasoning between its three names before rendering.
  jinja::List chat;
  for (size_t k = 0; k < messages.size(); ++k) {
    const auto& m = messages[k];
    if (!m.is_object()) {
      return Status::invalid_argument("messages[" + std::to_string(k) + "] must be an object, got " + m.type_name());
    }
    nlohmann::ordered_json clean = nlohmann::ordered_json::object();
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!it.value().is_null()) clean[it.key()] = it.value();
    }
    jinja::Value msg = jinja::Value::from_json(clean);
    const jinja::Value* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      if ((reasoning = msg.dict->find(key)) != nullptr) break;
    }
    if (reasoning) {
      jinja::Value r = *reasoning;
      jinja::Dict aliased;
      aliased.set("thinking", r);
      for (const auto& [key, value] : msg.dict->items) aliased.set(key, value);
      aliased.set("reasoning_content", r);
      msg = jinja::Value::make_dict(std::move(aliased));
    }
    chat.push_back(std::move(msg));
  }

  jinja::RenderContext ctx;
  ctx.now = opts.now;
  for (const auto& [name, value] : special_tokens_) ctx.variables.set(name, jinja::Value::string(value));
  for (auto it = opts.kwargs.begin(); it != opts.kwargs.end(); ++it) {
    ctx.variables.set(it.key(), jinja::Value::from_json(it.value()));
  }
  ctx.variables.set("messages", jinja::Value::make_list(std::move(chat)));
  ctx.variables.set("tools", jinja::Value::from_json(opts.tools));
  ctx.variables.set("documents", jinja::Value::from_json(opts.documents));
  ctx.variables.set("add_generation_prompt", jinja::Value::boolean(opts.add_generation_prompt));
  return tpl->render(ctx);
}

}  // namespace llmctl::tokenizer
