#include "runtime/server/bench_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <asio.hpp>
#include <fmt/format.h>
#include <http_parser.h>

namespace llmctl::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Prompt {
  std::string text;
  int output_len = 0;
};

struct Sample {
  bool ok = false;
  std::string error;
  double ttft_s = 0, e2e_s = 0;
  std::vector<double> itl_s;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// One streaming request over its own connection, parsed by http_parser.
struct Exchange {
  Clock::time_point start;
  Clock::time_point last_token;
  bool got_first = false;
  int status = 0;
  std::string line_buf, body;
  Sample* sample = nullptr;
  bool done = false;

  void on_bytes(const char* data, size_t len) {
    Clock::time_point now = Clock::now();
    if (status != 200) {
      body.append(data, len);
      return;
    }
    line_buf.append(data, len);
    size_t pos;
    while ((pos = line_buf.find("\n\n")) != std::string::npos) {
      std::string event = line_buf.substr(0, pos);
      line_buf.erase(0, pos + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      json j = json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) {
        sample->prompt_tokens = j["usage"].value("prompt_tokens", 0);
        sample->completion_tokens = j["usage"].value("completion_tokens", 0);
      }
      if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const json& c = j["choices"][0];
        std::string text = c.contains("text") && c["text"].is_string() ? c["text"].get<std::string>() : "";
        if (text.empty()) continue;
        if (!got_first) {
          sample->ttft_s = std::chrono::duration<double>(now - start).count();
          got_first = true;
        } else {
          sample->itl_s.push_back(std::chrono::duration<double>(now - last_token).count());
        }
        last_token = now;
      }
    }
  }
};

int on_body_cb(http_parser* p, const char* at, size_t len) {
  static_cast<Exchange*>(p->data)->on_bytes(at, len);
  return 0;
}
int on_headers_cb(http_parser* p) {
  static_cast<Exchange*>(p->data)->status = static_cast<int>(p->status_code);
  return 0;
}
int on_complete_cb(http_parser* p) {
  static_cast<Exchange*>(p->data)->done = true;
  return 0;
}

Sample send_one(const std::string& host, const std::string& port, const std::string& path, const std::string& body,
                const std::string& api_key) {
  Sample sample;
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  asio::ip::tcp::socket socket(io);
  asio::error_code ec;
  auto endpoints = resolver.resolve(host, port, ec);
  if (!ec) asio::connect(socket, endpoints, ec);
  if (ec) {
    sample.error = fmt::format("connect {}:{}: {}", host, port, ec.message());
    return sample;
  }
  std::string req = fmt::format("POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
                                "Accept: text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n",
                                path, host, port, body.size());
  if (!api_key.empty()) req += fmt::format("Authorization: Bearer {}\r\n", api_key);
  req += "\r\n" + body;
  Exchange ex;
  ex.sample = &sample;
  ex.start = Clock::now();
  asio::write(socket, asio::buffer(req), ec);
  http_parser parser;
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &ex;
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_body = on_body_cb;
  settings.on_headers_complete = on_headers_cb;
  settings.on_message_complete = on_complete_cb;
  char buf[16384];
  while (!ec && !ex.done) {
    size_t n = socket.read_some(asio::buffer(buf), ec);
    if (n > 0) {
      size_t parsed = http_parser_execute(&parser, &settings, buf, n);
      if (parsed != n || HTTP_PARSER_ERRNO(&parser) != HPE_OK) {
        sample.error = "malformed HTTP response";
        return sample;
      }
    }
  }
  sample.e2e_s = std::chrono::duration<double>(Clock::now() - ex.start).count();
  if (ex.status != 200) {
    sample.error = fmt::format("HTTP {}: {}", ex.status, ex.body.substr(0, 300));
  } else if (!ex.got_first) {
    sample.error = ec ? ec.message() : "no tokens received";
  } else {
    sample.ok = true;
  }
  return sample;
}

LatencyStats stats_of(std::vector<double> v) {
  LatencyStats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  auto pct = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5))]; };
  s.mean_ms = sum / static_cast<double>(v.size()) * 1000;
  s.p50_ms = pct(0.5) * 1000;
  s.p99_ms = pct(0.99) * 1000;
  return s;
}

}  // namespace

Result<BenchResult> run_bench(const BenchOptions& o) {
  if (o.concurrency < 1) return Status::invalid_argument("--concurrency must be at least 1");
  if (o.num_prompts < 1) return Status::invalid_argument("--num-prompts must be at least 1");
  if (o.model.empty()) return Status::invalid_argument("--model is required");
  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(o.url.data(), o.url.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_HOST))) {
    return Status::invalid_argument("--url " + o.url + ": not an http://HOST:PORT URL");
  }
  std::string host = o.url.substr(u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
  std::string port = (u.field_set & (1 << UF_PORT)) ? std::to_string(u.port) : "80";
  std::string base = (u.field_set & (1 << UF_PATH)) ? o.url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len) : "";
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.size() >= 3 && base.substr(base.size() - 3) == "/v1") base.resize(base.size() - 3);
  const std::string path = base + "/v1/completions";

  std::vector<Prompt> prompts;
  if (!o.dataset.empty()) {
    std::ifstream in(o.dataset);
    if (!in) return Status::not_found("--dataset " + o.dataset + ": cannot open");
    std::string line;
    int line_no = 0;
    while (std::getline(in, line) && static_cast<int>(prompts.size()) < o.num_prompts) {
      ++line_no;
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string()) {
        return Status::invalid_argument(fmt::format("--dataset {} line {}: expected {{\"prompt\": string}}", o.dataset, line_no));
      }
      prompts.push_back({j["prompt"].get<std::string>(), j.value("output_len", o.output_len)});
    }
    if (prompts.empty()) return Status::invalid_argument("--dataset " + o.dataset + ": no prompts");
  } else {
    std::mt19937_64 rng(o.seed);
    static const char* kWords[] = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "it", "ran", "away", "home"};
    for (int i = 0; i < o.num_prompts; ++i) {
      std::string text;
      for (int w = 0; w < o.input_len; ++w) text += (w ? " " : "") + std::string(kWords[rng() % 12]);
      prompts.push_back({text, o.output_len});
    }
  }
  const int total = o.num_prompts;
  std::vector<double> arrival(static_cast<size_t>(total), 0.0);
  if (o.request_rate > 0) {
    std::mt19937_64 rng(o.seed + 1);
    std::exponential_distribution<double> gap(o.request_rate);
    double t = 0;
    for (double& a : arrival) a = (t += gap(rng));
  }
  std::vector<Sample> samples(static_cast<size_t>(total));
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::mutex progress_mu;
  Clock::time_point start = Clock::now();
  auto worker = [&] {
    for (int i; (i = next.fetch_add(1)) < total;) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(arrival[static_cast<size_t>(i)])));
      const Prompt& p = prompts[static_cast<size_t>(i) % prompts.size()];
      json body = {{"model", o.model}, {"prompt", p.text}, {"max_tokens", p.output_len}, {"ignore_eos", true},
                   {"temperature", o.temperature}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
      if (o.top_p < 1) body["top_p"] = o.top_p;
      if (o.temperature > 0) body["seed"] = static_cast<uint64_t>(o.seed + static_cast<uint64_t>(i));
      samples[static_cast<size_t>(i)] = send_one(host, port, path, body.dump(), o.api_key);
      int d = done.fetch_add(1) + 1;
      if (o.progress) {
        std::lock_guard<std::mutex> lock(progress_mu);
        o.progress(d, total);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min(o.concurrency, total); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  BenchResult r;
  r.duration_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> ttft, tpot, itl, e2e;
  for (const Sample& s : samples) {
    if (!s.ok) {
      ++r.num_errors;
      if (r.first_error.empty()) r.first_error = s.error;
      continue;
    }
    ++r.num_requests;
    r.input_tokens += s.prompt_tokens;
    r.output_tokens += s.completion_tokens;
    ttft.push_back(s.ttft_s);
    e2e.push_back(s.e2e_s);
    if (s.completion_tokens > 1) tpot.push_back((s.e2e_s - s.ttft_s) / static_cast<double>(s.completion_tokens - 1));
    itl.insert(itl.end(), s.itl_s.begin(), s.itl_s.end());
  }
  r.request_throughput = r.num_requests / r.duration_s;
  r.input_throughput = static_cast<double>(r.input_tokens) / r.duration_s;
  r.output_throughput = static_cast<double>(r.output_tokens) / r.duration_s;
  r.ttft = stats_of(ttft);
  r.tpot = stats_of(tpot);
  r.itl = stats_of(itl);
  r.e2e = stats_of(e2e);
  return r;
}

json BenchResult::to_json() const {
  auto lat = [](const LatencyStats& s) { return json{{"mean_ms", s.mean_ms}, {"p50_ms", s.p50_ms}, {"p99_ms", s.p99_ms}}; };
  return {{"completed", num_requests}, {"errors", num_errors}, {"first_error", first_error},
          {"duration_s", duration_s}, {"total_input_tokens", input_tokens}, {"total_output_tokens", output_tokens},
          {"request_throughput", request_throughput}, {"input_throughput", input_throughput},
          {"output_throughput", output_throughput}, {"ttft", lat(ttft)}, {"tpot", lat(tpot)}, {"itl", lat(itl)},
          {"e2e", lat(e2e)}};
}

std::string BenchResult::to_text() const {
  std::string out = fmt::format(
      "Successful requests:              {}\nFailed requests:                  {}\n"
      "Benchmark duration (s):           {:.2f}\nTotal input tokens:               {}\n"
      "Total generated tokens:           {}\nRequest throughput (req/s):       {:.2f}\n"
      "Input token throughput (tok/s):   {:.2f}\nOutput token throughput (tok/s):  {:.2f}\n",
      num_requests, num_errors, duration_s, input_tokens, output_tokens, request_throughput, input_throughput,
      output_throughput);
  auto row = [&](const char* name, const LatencyStats& s) {
    out += fmt::format("{:<5} (ms)  mean {:9.2f}  p50 {:9.2f}  p99 {:9.2f}\n", name, s.mean_ms, s.p50_ms, s.p99_ms);
  };
  row("TTFT", ttft);
  row("TPOT", tpot);
  row("ITL", itl);
  row("E2E", e2e);
  if (!first_error.empty()) out += "First error: " + first_error + "\n";
  return out;
}

}  // namespace llmctl::server
