#include "config/cluster_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace llmctl {
namespace {

// Collects every problem in a file so the user can fix them in one pass.
class Diagnostics {
 public:
  explicit Diagnostics(std::string_view source) : source_(source) {}

  void error(const toml::source_region& where, std::string_view key, std::string_view what) {
    if (where.begin.line > 0) {
      messages_.push_back(fmt::format("{}:{}:{}: {}: {}", source_, where.begin.line, where.begin.column, key, what));
    } else {
      messages_.push_back(fmt::format("{}: {}: {}", source_, key, what));
    }
  }
  void error(std::string_view key, std::string_view what) { error(toml::source_region{}, key, what); }

  bool empty() const { return messages_.empty(); }
  std::size_t size() const { return messages_.size(); }
  Status status() const {
    std::string joined;
    for (const auto& m : messages_) {
      if (!joined.empty()) joined += "\n";
      joined += m;
    }
    return Status::invalid_argument(joined);
  }

 private:
  std::string source_;
  std::vector<std::string> messages_;
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return fmt::format("the string \"{}\"", *n.value<std::string>());
    case toml::node_type::integer: return fmt::format("the integer {}", *n.value<int64_t>());
    case toml::node_type::floating_point: return fmt::format("the number {}", *n.value<double>());
    case toml::node_type::boolean: return *n.value<bool>() ? "true" : "false";
    default: return "a date/time";
  }
}

std::string join_path(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

// Reads the keys of one TOML table, remembering which were consumed so that
// unknown keys (typos) become errors with a suggestion.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, Diagnostics& diag)
      : table_(table), path_(std::move(path)), diag_(diag) {}

  ~TableReader() = default;
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  const toml::node* get(std::string_view key) {
    known_.insert(std::string(key));
    return table_.get(key);
  }

  void read_string(std::string_view key, std::string& out) {
    const toml::node* n = get(key);
    if (!n) return;
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      out = *v;
    } else {
      diag_.error(n->source(), join_path(path_, key), "expected a string, got " + type_name(*n));
    }
  }

  void read_int(std::string_view key, int& out, int64_t min, int64_t max, std::string_view meaning = "an integer") {
    const toml::node* n = get(key);
    if (!n) return;
    if (!n->is_integer()) {
      diag_.error(n->source(), join_path(path_, key), fmt::format("expected {}, got {}", meaning, type_name(*n)));
      return;
    }
    int64_t v = *n->value<int64_t>();
    if (v < min || v > max) {
      diag_.error(n->source(), join_path(path_, key),
                  fmt::format("expected {} in {}..{}, got {}", meaning, min, max, v));
      return;
    }
    out = static_cast<int>(v);
  }

  void read_optional_int(std::string_view key, std::optional<int>& out, int64_t min, int64_t max) {
    if (!table_.contains(key)) {
      known_.insert(std::string(key));
      return;
    }
    int v = 0;
    std::size_t errors_before = diag_.size();
    read_int(key, v, min, max);
    if (diag_.size() == errors_before) out = v;
  }

  void read_double(std::string_view key, double& out, double min_exclusive, double max_inclusive) {
    const toml::node* n = get(key);
    if (!n) return;
    if (!n->is_number()) {
      diag_.error(n->source(), join_path(path_, key), "expected a number, got " + type_name(*n));
      return;
    }
    double v = *n->value<double>();
    if (!(v > min_exclusive && v <= max_inclusive)) {
      diag_.error(n->source(), join_path(path_, key),
                  fmt::format("expected a number in ({}, {}], got {}", min_exclusive, max_inclusive, v));
      return;
    }
    out = v;
  }

  const toml::table* read_table(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      diag_.error(n->source(), join_path(path_, key), "expected a table, got " + type_name(*n));
      return nullptr;
    }
    return n->as_table();
  }

  // Reports keys that no read_* asked for.
  void check_unknown_keys() {
    for (auto&& [k, v] : table_) {
      std::string key(k.str());
      if (known_.count(key)) continue;
      std::string suggestion;
      std::size_t best = 3;
      for (const auto& candidate : known_) {
        std::size_t d = edit_distance(key, candidate);
        if (d < best) {
          best = d;
          suggestion = candidate;
        }
      }
      std::string what = suggestion.empty()
                             ? fmt::format("unknown key (known keys here: {})", fmt::join(known_, ", "))
                             : fmt::format("unknown key (did you mean '{}'?)", suggestion);
      diag_.error(k.source(), join_path(path_, key), what);
    }
  }

  const std::string& path() const { return path_; }
  Diagnostics& diag() { return diag_; }

 private:
  const toml::table& table_;
  std::string path_;
  Diagnostics& diag_;
  std::set<std::string> known_;
};

void read_ssh(TableReader& r, SshConfig& ssh) {
  r.read_string("user", ssh.user);
  r.read_string("key", ssh.key);
  r.read_int("port", ssh.port, 1, 65535, "a port");
  r.check_unknown_keys();
}

void read_resources(const toml::node* n, const std::string& path, Diagnostics& diag,
                    std::map<std::string, double>& out) {
  if (!n) return;
  const toml::table* t = n->as_table();
  if (!t) {
    diag.error(n->source(), path, "expected a table like { \"node:lf001\" = 1 }, got " + type_name(*n));
    return;
  }
  for (auto&& [k, v] : *t) {
    std::string key(k.str());
    if (!v.is_number() || *v.value<double>() < 0) {
      diag.error(v.source(), join_path(path, fmt::format("\"{}\"", key)),
                 "expected a non-negative number, got " + type_name(v));
      continue;
    }
    out[key] = *v.value<double>();
  }
}

void read_node(const toml::table& t, const std::string& path, const SshConfig& ssh_defaults, Diagnostics& diag,
               NodeConfig& node) {
  TableReader r(t, path, diag);
  r.read_string("host", node.host);
  if (!t.contains("host")) diag.error(t.source(), path + ".host", "missing (the host name or address to ssh to)");
  r.read_string("node_ip", node.node_ip);
  r.read_optional_int("num_gpus", node.num_gpus, 0, 1024);
  r.read_optional_int("num_cpus", node.num_cpus, 0, 1 << 20);
  read_resources(r.get("resources"), path + ".resources", diag, node.resources);
  node.ssh = ssh_defaults;
  if (const toml::table* ssh = r.read_table("ssh")) {
    TableReader sr(*ssh, path + ".ssh", diag);
    read_ssh(sr, node.ssh);
  }
  r.read_string("state_dir", node.state_dir);
  r.read_string("install_dir", node.install_dir);
  r.check_unknown_keys();
}

void read_model(const toml::table& t, const std::string& path, Diagnostics& diag, ModelConfig& m) {
  TableReader r(t, path, diag);
  r.read_string("name", m.name);
  r.read_string("path", m.path);
  if (!t.contains("path")) diag.error(t.source(), path + ".path", "missing (the model folder on every node)");
  r.read_int("tp", m.tp, 1, 1024);
  r.read_int("pp", m.pp, 1, 1024);
  r.read_int("replicas", m.replicas, 1, 1024);
  r.read_double("gpu_memory_utilization", m.gpu_memory_utilization, 0.0, 1.0);
  r.read_int("max_num_seqs", m.max_num_seqs, 1, 1 << 20);
  r.read_int("max_model_len", m.max_model_len, 1, 1 << 24);
  r.read_string("load_format", m.load_format);
  if (m.load_format != "auto" && m.load_format != "dummy") {
    diag.error(t.get("load_format")->source(), path + ".load_format",
               "expected \"auto\" (the folder's safetensors) or \"dummy\" (random weights), got \"" + m.load_format +
                   "\"");
  }
  r.check_unknown_keys();
  if (m.name.empty() && !m.path.empty()) {
    m.name = std::filesystem::path(m.path).lexically_normal().filename().string();
    if (m.name.empty()) m.name = std::filesystem::path(m.path).lexically_normal().parent_path().filename().string();
  }
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool is_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string toml_key(const std::string& k) {
  bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? k : toml_quote(k);
}

std::string format_number(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v))) return std::to_string(static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

void write_node(std::ostringstream& os, const NodeConfig& n, const SshConfig& defaults) {
  os << "host = " << toml_quote(n.host) << "\n";
  os << "node_ip = " << toml_quote(n.node_ip) << (n.node_ip.empty() ? "  # empty: what host resolves to" : "")
     << "\n";
  if (n.num_gpus) os << "num_gpus = " << *n.num_gpus << "\n";
  else os << "# num_gpus: detected\n";
  if (n.num_cpus) os << "num_cpus = " << *n.num_cpus << "\n";
  else os << "# num_cpus: detected\n";
  os << "resources = {";
  bool first = true;
  for (const auto& [k, v] : n.resources) {
    os << (first ? " " : ", ") << toml_key(k) << " = " << format_number(v);
    first = false;
  }
  os << (n.resources.empty() ? "}" : " }") << "\n";
  if (n.ssh.user != defaults.user || n.ssh.key != defaults.key || n.ssh.port != defaults.port) {
    os << "ssh = { user = " << toml_quote(n.ssh.user) << ", key = " << toml_quote(n.ssh.key)
       << ", port = " << n.ssh.port << " }\n";
  }
  os << "state_dir = " << toml_quote(n.state_dir) << "\n";
  os << "install_dir = " << toml_quote(n.install_dir) << "\n";
}

}  // namespace

std::vector<const NodeConfig*> ClusterConfig::nodes() const {
  std::vector<const NodeConfig*> out{&head};
  for (const auto& w : workers) out.push_back(&w);
  return out;
}

Result<PortRange> parse_port_range(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    return Status::invalid_argument(fmt::format("expected a port range like \"30000-32000\", got \"{}\"", text));
  }
  PortRange r;
  auto a = text.substr(0, dash), b = text.substr(dash + 1);
  auto [pa, ea] = std::from_chars(a.data(), a.data() + a.size(), r.first);
  auto [pb, eb] = std::from_chars(b.data(), b.data() + b.size(), r.last);
  if (ea != std::errc() || eb != std::errc() || pa != a.data() + a.size() || pb != b.data() + b.size()) {
    return Status::invalid_argument(fmt::format("expected a port range like \"30000-32000\", got \"{}\"", text));
  }
  if (r.first < 1 || r.last > 65535 || r.first > r.last) {
    return Status::invalid_argument(
        fmt::format("port range \"{}\" must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535", text));
  }
  return r;
}

Status validate(const ClusterConfig& c) {
  Diagnostics diag(c.source_path.empty() ? "config" : c.source_path);
  if (c.head.host.empty()) diag.error("head.host", "missing (the host name or address of the head node)");
  std::map<int, std::string> fixed = {{c.ports.head, "ports.head"},
                                      {c.ports.dashboard, "ports.dashboard"},
                                      {c.ports.client, "ports.client"},
                                      {c.ports.api, "ports.api"}};
  if (fixed.size() != 4) {
    diag.error("ports", fmt::format("head {}, dashboard {}, client {} and api {} must be four different ports",
                                    c.ports.head, c.ports.dashboard, c.ports.client, c.ports.api));
  }
  for (const auto& [port, name] : fixed) {
    if (c.ports.node_range.contains(port)) {
      diag.error(name, fmt::format("port {} lies inside ports.node_range {}-{}; move one of them", port,
                                   c.ports.node_range.first, c.ports.node_range.last));
    }
  }
  std::set<std::string> hosts;
  auto nodes = c.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const NodeConfig& n = *nodes[i];
    std::string where = i == 0 ? "head" : fmt::format("workers[{}]", i - 1);
    if (!n.host.empty() && !hosts.insert(n.host).second) {
      diag.error(where + ".host", fmt::format("\"{}\" is listed more than once", n.host));
    }
    if (!n.node_ip.empty() && !is_ip_literal(n.node_ip)) {
      diag.error(where + ".node_ip", fmt::format("expected an IPv4 or IPv6 address, got \"{}\"", n.node_ip));
    }
  }
  for (const auto& [k, v] : c.env) {
    if (!is_env_name(k)) diag.error("env." + k, "not a valid environment variable name");
  }
  std::set<std::string> model_names;
  int known_gpus = 0;
  bool all_known = true;
  for (const auto* n : nodes) {
    if (n->num_gpus) known_gpus += *n->num_gpus;
    else all_known = false;
  }
  for (std::size_t i = 0; i < c.models.size(); ++i) {
    const ModelConfig& m = c.models[i];
    std::string where = fmt::format("models[{}]", i);
    if (!m.name.empty() && !model_names.insert(m.name).second) {
      diag.error(where + ".name", fmt::format("\"{}\" is used by two models; names must be unique", m.name));
    }
    int need = m.tp * m.pp * m.replicas;
    if (all_known && need > known_gpus) {
      diag.error(where, fmt::format("needs tp*pp*replicas = {}*{}*{} = {} GPUs but the nodes list only {}", m.tp,
                                    m.pp, m.replicas, need, known_gpus));
    }
  }
  return diag.empty() ? Status::ok() : diag.status();
}

Result<ClusterConfig> parse_cluster_config(std::string_view text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::invalid_argument(
        fmt::format("{}:{}:{}: TOML syntax error: {}", source_name, b.line, b.column, e.description()));
  }
  ClusterConfig c;
  c.source_path = std::string(source_name);
  c.name = std::filesystem::path(source_name).stem().string();
  Diagnostics diag(source_name);
  TableReader top(root, "", diag);

  if (const toml::table* t = top.read_table("cluster")) {
    TableReader r(*t, "cluster", diag);
    r.read_string("name", c.name);
    r.check_unknown_keys();
  }
  if (const toml::table* t = top.read_table("ports")) {
    TableReader r(*t, "ports", diag);
    r.read_int("head", c.ports.head, 1, 65535, "a port");
    r.read_int("dashboard", c.ports.dashboard, 1, 65535, "a port");
    r.read_int("client", c.ports.client, 1, 65535, "a port");
    r.read_int("api", c.ports.api, 1, 65535, "a port");
    if (const toml::node* n = r.get("node_range")) {
      if (!n->is_string()) {
        diag.error(n->source(), "ports.node_range", "expected a string like \"30000-32000\", got " + type_name(*n));
      } else if (auto range = parse_port_range(*n->value<std::string>()); !range.is_ok()) {
        diag.error(n->source(), "ports.node_range", range.status().message());
      } else {
        c.ports.node_range = *range;
      }
    }
    r.check_unknown_keys();
  }
  if (const toml::table* t = top.read_table("ssh")) {
    TableReader r(*t, "ssh", diag);
    read_ssh(r, c.ssh);
  }
  if (const toml::table* t = top.read_table("env")) {
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (v.is_string()) c.env[key] = *v.value<std::string>();
      else if (v.is_integer()) c.env[key] = std::to_string(*v.value<int64_t>());
      else if (v.is_boolean()) c.env[key] = *v.value<bool>() ? "1" : "0";
      else diag.error(v.source(), "env." + key, "expected a string, got " + type_name(v));
    }
  }
  if (const toml::table* t = top.read_table("head")) {
    read_node(*t, "head", c.ssh, diag, c.head);
  } else if (!root.contains("head")) {
    diag.error("head", "missing: add a [head] table with at least host = \"...\"");
  }
  if (const toml::node* n = top.get("workers")) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      diag.error(n->source(), "workers", "expected [[workers]] tables, got " + type_name(*n));
    } else {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& w = *arr->get(i);
        std::string path = fmt::format("workers[{}]", i);
        if (!w.is_table()) {
          diag.error(w.source(), path, "expected a table, got " + type_name(w));
          continue;
        }
        NodeConfig node;
        read_node(*w.as_table(), path, c.ssh, diag, node);
        c.workers.push_back(std::move(node));
      }
    }
  }
  if (const toml::node* n = top.get("models")) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      diag.error(n->source(), "models", "expected [[models]] tables, got " + type_name(*n));
    } else {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& m = *arr->get(i);
        std::string path = fmt::format("models[{}]", i);
        if (!m.is_table()) {
          diag.error(m.source(), path, "expected a table, got " + type_name(m));
          continue;
        }
        ModelConfig model;
        read_model(*m.as_table(), path, diag, model);
        c.models.push_back(std::move(model));
      }
    }
  }
  top.check_unknown_keys();
  if (!diag.empty()) return diag.status();
  RETURN_IF_ERROR(validate(c));
  return c;
}

Result<ClusterConfig> load_cluster_config(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::invalid_argument(fmt::format("{}: is a directory, expected a cluster.toml file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_cluster_config(ss.str(), path);
}

std::string to_toml(const ClusterConfig& c) {
  std::ostringstream os;
  os << "# effective configuration of " << (c.source_path.empty() ? "(built-in)" : c.source_path)
     << ", defaults filled in\n";
  os << "[cluster]\nname = " << toml_quote(c.name) << "\n\n";
  os << "[ports]\nhead = " << c.ports.head << "\ndashboard = " << c.ports.dashboard << "\nclient = " << c.ports.client
     << "\napi = " << c.ports.api << "\nnode_range = \"" << c.ports.node_range.first << "-" << c.ports.node_range.last
     << "\"\n\n";
  os << "[ssh]\nuser = " << toml_quote(c.ssh.user) << "\nkey = " << toml_quote(c.ssh.key)
     << (c.ssh.key.empty() ? "  # empty: ~/.ssh/id_ed25519 when present, else the ssh-agent" : "")
     << "\nport = " << c.ssh.port << "\n\n";
  os << "[env]\n";
  for (const auto& [k, v] : c.env) os << k << " = " << toml_quote(v) << "\n";
  os << "\n[head]\n";
  write_node(os, c.head, c.ssh);
  for (const auto& w : c.workers) {
    os << "\n[[workers]]\n";
    write_node(os, w, c.ssh);
  }
  for (const auto& m : c.models) {
    os << "\n[[models]]\nname = " << toml_quote(m.name) << "\npath = " << toml_quote(m.path) << "\ntp = " << m.tp
       << "\npp = " << m.pp << "\nreplicas = " << m.replicas << "\ngpu_memory_utilization = "
       << format_number(m.gpu_memory_utilization) << "\n";
    if (m.max_num_seqs > 0) os << "max_num_seqs = " << m.max_num_seqs << "\n";
    os << "max_model_len = " << m.max_model_len << "\n";
    if (m.load_format != "auto") os << "load_format = " << toml_quote(m.load_format) << "\n";
  }
  return os.str();
}

}  // namespace llmctl
