// The directory rendezvous store: values round-trip byte for byte, a reader
// waits for a key another process sets later, and a key that never comes
// ends in DEADLINE_EXCEEDED naming the key and the directory.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "runtime/dist/rendezvous_store.h"

namespace llmctl::dist {
namespace {

using namespace std::chrono_literals;

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("llmctl-store-{}-{}", name, ::getpid());
  std::filesystem::remove_all(dir);
  return dir.string();
}

TEST_CASE("file store: set then get returns the bytes; keys with slashes and odd bytes stay distinct") {
  std::string dir = fresh_dir("roundtrip");
  auto store = open_file_store(dir);  // creates the directory
  REQUIRE(store.is_ok());
  CHECK((*store)->describe() == "file store " + dir);
  std::string binary("a\0b\xff\n", 5);
  REQUIRE((*store)->set("tp/rank/0", binary).is_ok());
  REQUIRE((*store)->set("tp%2Frank%2F0", "other").is_ok());
  REQUIRE((*store)->set("..", "dots").is_ok());
  REQUIRE((*store)->set("empty", "").is_ok());
  CHECK(*(*store)->get("tp/rank/0", 0ms) == binary);
  CHECK(*(*store)->get("tp%2Frank%2F0", 0ms) == "other");
  CHECK(*(*store)->get("..", 0ms) == "dots");
  CHECK(*(*store)->get("empty", 0ms) == "");
  REQUIRE((*store)->set("tp/rank/0", "replaced").is_ok());
  CHECK(*(*store)->get("tp/rank/0", 0ms) == "replaced");
  CHECK((*store)->set("", "x").code() == StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST_CASE("file store: a missing key times out, naming the key and the directory") {
  std::string dir = fresh_dir("timeout");
  auto store = open_file_store(dir);
  REQUIRE(store.is_ok());
  auto started = std::chrono::steady_clock::now();
  auto r = (*store)->get("tp/rank/3", 150ms);
  auto waited = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(r.status().message().find("\"tp/rank/3\"") != std::string::npos);
  CHECK(r.status().message().find(dir) != std::string::npos);
  CHECK(waited >= 150ms);
  CHECK(waited < 1s);
  std::filesystem::remove_all(dir);
}

TEST_CASE("file store: get waits for a key another writer sets later, and sees all of a large value") {
  std::string dir = fresh_dir("wait");
  auto store = open_file_store(dir);
  REQUIRE(store.is_ok());
  std::string big(3 << 20, 'v');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  Status written;
  std::thread writer([&] {
    std::this_thread::sleep_for(200ms);
    auto other = open_file_store(dir);
    written = other.is_ok() ? (*other)->set("late", big) : other.status();
  });
  auto started = std::chrono::steady_clock::now();
  auto r = (*store)->get("late", 5s);
  REQUIRE(r.is_ok());
  CHECK(r->size() == big.size());
  CHECK(*r == big);
  CHECK(std::chrono::steady_clock::now() - started >= 150ms);
  writer.join();
  CHECK(written.is_ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("file store: a path that is a file is refused") {
  std::string path = fresh_dir("notadir");
  { FILE* f = std::fopen(path.c_str(), "w"); REQUIRE(f != nullptr); std::fclose(f); }
  auto r = open_file_store(path);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find(path) != std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace llmctl::dist
