#include "runtime/dist/head_store.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/control/control_client.h"
#include "runtime/control/daemon.h"

namespace llmctl::dist {
namespace {

constexpr std::chrono::milliseconds kPutTimeout{10000};
// kv.wait is answered by the head at its own time-out; the call waits a bit
// longer so the head's answer (naming the key) wins over a local time-out.
constexpr std::chrono::milliseconds kWaitMargin{2000};

std::string to_hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

Result<std::string> from_hex(const std::string& hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return Status::invalid_argument("odd length");
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::invalid_argument(fmt::format("not hex at {}", 2 * i));
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

class HeadStore final : public RendezvousStore {
 public:
  HeadStore(HeadStoreOptions options, std::unique_ptr<control::ControlClient> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  Status set(const std::string& key, const std::string& value) override {
    if (key.empty()) return Status::invalid_argument(fmt::format("{}: empty key", describe()));
    auto r = client_->call("kv.put", {{"key", options_.key_prefix + key}, {"value", to_hex(value)}, {"overwrite", true}},
                           kPutTimeout);
    if (!r.is_ok()) return r.status().with_context(fmt::format("{}: setting \"{}\"", describe(), key));
    return Status::ok();
  }

  Result<std::string> get(const std::string& key, std::chrono::milliseconds timeout) override {
    auto r = client_->call("kv.wait", {{"key", options_.key_prefix + key}, {"timeout_ms", timeout.count()}},
                           timeout + kWaitMargin);
    if (!r.is_ok()) {
      if (r.status().code() == StatusCode::kDeadlineExceeded) {
        return Status::deadline_exceeded(
            fmt::format("{}: key \"{}\" was not set within {} ms", describe(), key, timeout.count()));
      }
      return r.status().with_context(fmt::format("{}: waiting for \"{}\"", describe(), key));
    }
    if (!r->value("found", false) || !(*r)["value"].is_string()) {
      return Status::internal(fmt::format("{}: kv.wait for \"{}\" answered without a value", describe(), key));
    }
    auto value = from_hex((*r)["value"].get<std::string>());
    if (!value.is_ok()) return value.status().with_context(fmt::format("{}: value of \"{}\"", describe(), key));
    return value;
  }

  std::string describe() const override { return "head " + options_.address; }

 private:
  HeadStoreOptions options_;
  std::unique_ptr<control::ControlClient> client_;
};

}  // namespace

Result<std::unique_ptr<RendezvousStore>> open_head_store(const HeadStoreOptions& options) {
  control::ClusterAccess access{options.address, options.token, options.tls_ca};
  auto client = control::connect_to(access, options.connect_timeout);
  if (!client.is_ok()) return client.status().with_context(fmt::format("rendezvous store at head {}", options.address));
  return std::unique_ptr<RendezvousStore>(std::make_unique<HeadStore>(options, std::move(*client)));
}

}  // namespace llmctl::dist
