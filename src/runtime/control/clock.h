// Clock: the time source of the failure detector and the head's timers,
// injected so tests step time instead of sleeping (STYLE.md habit 10).
#pragma once

#include <chrono>

namespace llmctl::control {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// Starts at an arbitrary fixed point; only advance() moves it.
class FakeClock : public Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  TimePoint now_ = TimePoint(std::chrono::hours(1));
};

// Milliseconds since the Unix epoch, for timestamps shown to users and persisted.
std::int64_t wall_time_ms();

}  // namespace llmctl::control
