// A Communicator for tests: world_size ranks as threads of one process,
// meeting at a std::barrier for each collective (two phases: publish, then
// read). fail_after(n) makes every rank's n-th and later collectives fail, as
// a dead peer would, without hanging the others.
#pragma once

#include <atomic>
#include <barrier>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dist/communicator.h"

namespace llmctl::engine::testing {

class InProcessGroup {
 public:
  explicit InProcessGroup(int world_size)
      : world_size_(world_size), barrier_(world_size), floats_(world_size), bytes_(world_size) {}

  std::unique_ptr<dist::Communicator> communicator(int rank);
  // Collectives numbered from 0 on each rank; the n-th and later fail.
  void fail_after(int n) { fail_after_ = n; }

 private:
  friend class InProcessCommunicator;
  int world_size_;
  std::barrier<> barrier_;
  std::vector<const float*> floats_;
  std::vector<std::string*> bytes_;
  std::atomic<int> fail_after_{-1};
};

class InProcessCommunicator final : public dist::Communicator {
 public:
  InProcessCommunicator(InProcessGroup* group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_->world_size_; }

  Status all_reduce_sum(float* data, int64_t count) override {
    RETURN_IF_ERROR(check());
    group_->floats_[rank_] = data;
    group_->barrier_.arrive_and_wait();
    std::vector<float> sum(static_cast<std::size_t>(count), 0.0f);
    // Rank order, so every rank rounds the same way.
    for (const float* part : group_->floats_) {
      for (int64_t i = 0; i < count; ++i) sum[i] += part[i];
    }
    group_->barrier_.arrive_and_wait();
    std::copy(sum.begin(), sum.end(), data);
    return Status::ok();
  }
  Status all_gather(const float* in, float* out, int64_t count) override {
    RETURN_IF_ERROR(check());
    group_->floats_[rank_] = in;
    group_->barrier_.arrive_and_wait();
    for (int r = 0; r < world_size(); ++r) std::copy(group_->floats_[r], group_->floats_[r] + count, out + r * count);
    group_->barrier_.arrive_and_wait();
    return Status::ok();
  }
  Status broadcast_bytes(std::string& bytes, int root) override {
    RETURN_IF_ERROR(check());
    group_->bytes_[rank_] = &bytes;
    group_->barrier_.arrive_and_wait();
    std::string copy = rank_ == root ? bytes : *group_->bytes_[root];
    group_->barrier_.arrive_and_wait();
    bytes = std::move(copy);
    return Status::ok();
  }
  Status barrier() override {
    RETURN_IF_ERROR(check());
    group_->barrier_.arrive_and_wait();
    return Status::ok();
  }

 private:
  Status check() {
    const int n = calls_++;
    const int limit = group_->fail_after_;
    if (limit >= 0 && n >= limit) return Status::unavailable("test group: collective " + std::to_string(n) + " fails");
    return Status::ok();
  }
  InProcessGroup* group_;
  int rank_;
  int calls_ = 0;
};

inline std::unique_ptr<dist::Communicator> InProcessGroup::communicator(int rank) {
  return std::make_unique<InProcessCommunicator>(this, rank);
}

}  // namespace llmctl::engine::testing
