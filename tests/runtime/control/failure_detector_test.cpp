#include "runtime/control/failure_detector.h"

#include <doctest/doctest.h>

using namespace llmctl::control;
using namespace std::chrono_literals;

TEST_CASE("a node is declared dead exactly when its timeout passes without heartbeats") {
  FakeClock clock;
  FailureDetector d(clock, 1000ms);  // 200 ms period x 5 misses
  d.heartbeat("a");
  d.heartbeat("b");
  int reported_at = -1;
  for (int i = 0; i < 10; ++i) {
    clock.advance(200ms);
    d.heartbeat("b");  // b keeps beating, a stopped
    for (const auto& id : d.expired()) {
      CHECK(id == "a");
      CHECK(reported_at == -1);  // reported once
      reported_at = i;
    }
  }
  CHECK(reported_at == 4);  // the 5th missed period: 1000 ms after the last beat
  CHECK(d.num_watched() == 1);
}

TEST_CASE("expiry is reported once, at the deadline and not before") {
  FakeClock clock;
  FailureDetector d(clock, 1000ms);
  d.heartbeat("a");
  clock.advance(999ms);
  CHECK(d.expired().empty());
  CHECK(d.since_last_heartbeat("a")->count() == 999);
  clock.advance(1ms);
  CHECK(d.expired() == std::vector<std::string>{"a"});
  CHECK(d.expired().empty());
  CHECK_FALSE(d.since_last_heartbeat("a").has_value());
}

TEST_CASE("a heartbeat pushes the deadline; a recovery grace can be longer than the timeout") {
  FakeClock clock;
  FailureDetector d(clock, 1000ms);
  d.watch_until("r", clock.now() + 5000ms);
  clock.advance(4000ms);
  CHECK(d.expired().empty());
  d.heartbeat("r");  // re-attached: normal timeout from now on
  clock.advance(1000ms);
  CHECK(d.expired() == std::vector<std::string>{"r"});
}

TEST_CASE("forget stops watching") {
  FakeClock clock;
  FailureDetector d(clock, 100ms);
  d.heartbeat("a");
  d.forget("a");
  clock.advance(1000ms);
  CHECK(d.expired().empty());
}
