// Runs the ranks of a test group as real processes: fork() one child per
// rank, run `body` there, and bring back its report through a pipe. The
// parent stays single-threaded (so fork is safe) and never hangs: children
// still running at `limit` are killed and reported as such.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace llmctl::dist::testing {

struct RankOutcome {
  int rank = 0;
  pid_t pid = 0;
  bool exited = false;   // false: killed by a signal (or by us at the limit)
  int exit_code = -1;
  bool timed_out = false;
  std::string report;    // what body returned: "" on success, else why not
  double seconds = 0;    // from the fork until the report arrived (or the end)
};

// `ranks`: which ranks to start (a missing one models a rank that never joins).
// body(rank) runs in the child; its return value is the report.
inline std::vector<RankOutcome> run_ranks(const std::vector<int>& ranks, const std::function<std::string(int)>& body,
                                          std::chrono::milliseconds limit) {
  auto start = std::chrono::steady_clock::now();
  std::vector<RankOutcome> out(ranks.size());
  std::vector<int> fds(ranks.size(), -1);
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    int p[2];
    if (::pipe(p) != 0) return out;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      std::string report = body(ranks[i]);
      std::size_t done = 0;
      while (done < report.size()) {
        ssize_t n = ::write(p[1], report.data() + done, report.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
      ::_exit(report.empty() ? 0 : 1);
    }
    ::close(p[1]);
    fds[i] = p[0];
    out[i].rank = ranks[i];
    out[i].pid = pid;
  }
  std::size_t open = ranks.size();
  while (open > 0) {
    auto left = limit - (std::chrono::steady_clock::now() - start);
    if (left <= std::chrono::milliseconds(0)) break;
    std::vector<pollfd> polls;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] >= 0) {
        polls.push_back({fds[i], POLLIN, 0});
        which.push_back(i);
      }
    }
    int n = ::poll(polls.data(), polls.size(),
                   static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()) + 1);
    if (n <= 0) continue;
    for (std::size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      std::size_t i = which[k];
      char buf[4096];
      ssize_t got = ::read(fds[i], buf, sizeof(buf));
      if (got > 0) {
        out[i].report.append(buf, static_cast<std::size_t>(got));
      } else {
        ::close(fds[i]);
        fds[i] = -1;
        --open;
        out[i].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    }
  }
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (fds[i] >= 0) {
      ::close(fds[i]);
      out[i].timed_out = true;
      out[i].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ::kill(out[i].pid, SIGKILL);
    }
    int status = 0;
    ::waitpid(out[i].pid, &status, 0);
    out[i].exited = WIFEXITED(status);
    if (out[i].exited) out[i].exit_code = WEXITSTATUS(status);
  }
  return out;
}

}  // namespace llmctl::dist::testing
