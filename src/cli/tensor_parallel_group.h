// Joins this process to a tensor-parallel group as one rank, over the
// collectives its device needs: Gloo's TCP transport for --device cpu, NCCL
// for cuda:N (only in builds with the CUDA backend). Shared by rank 0 (serve,
// generate) and `llmctl worker`, so every rank picks the same transport for
// the same --device.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "runtime/dist/communicator.h"
#include "runtime/dist/rendezvous_store.h"

namespace llmctl::cli {

struct TensorParallelJoin {
  int rank = 0;
  int tp = 1;
  // "cpu", or "cuda:N": the GPU this rank drives (its NCCL device).
  std::string device = "cpu";
  // NIC for the collectives (GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME); else
  // the address `hostname` resolves to, else the default route's.
  std::string interface;
  std::string hostname;
  std::chrono::milliseconds timeout{30000};
};

// Blocks until the whole group has met in `store` or the time-out passed.
Result<std::unique_ptr<dist::Communicator>> join_tensor_parallel_group(const TensorParallelJoin& join,
                                                                       dist::RendezvousStore& store);

// What a local group of ranks runs on for a --device value: "cpu" or "cuda"
// (rank r then drives GPU r); "auto" is cuda when this build has the CUDA
// backend and a GPU is visible. INVALID_ARGUMENT for cuda:N, which names one GPU.
Result<std::string> local_group_device(const std::string& device);

// The CUDA device index of "cuda" / "cuda:N"; -1 for anything else.
int cuda_device_index(const std::string& device);

}  // namespace llmctl::cli
