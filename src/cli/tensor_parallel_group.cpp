#include "cli/tensor_parallel_group.h"

#include <charconv>

#include "runtime/dist/gloo_communicator.h"
#if defined(LLMCTL_WITH_CUDA)
#include "kernels/cuda_backend.h"
#include "runtime/dist/nccl_communicator.h"
#endif

namespace llmctl::cli {

int cuda_device_index(const std::string& device) {
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) != 0) return -1;
  int index = -1;
  const char* begin = device.data() + 5;
  const char* end = device.data() + device.size();
  auto [ptr, ec] = std::from_chars(begin, end, index);
  if (ec != std::errc() || ptr != end || begin == end || index < 0) return -1;
  return index;
}

Result<std::string> local_group_device(const std::string& device) {
  if (device == "cpu" || device == "cuda") return device;
  if (device == "auto") {
#if defined(LLMCTL_WITH_CUDA)
    if (kernels::cuda_device_count() > 0) return std::string("cuda");
#endif
    return std::string("cpu");
  }
  if (cuda_device_index(device) >= 0) {
    return Status::invalid_argument("--device " + device +
                                    " with --tp: the ranks use GPUs 0..tp-1; pass --device cuda (or set CUDA_VISIBLE_DEVICES)");
  }
  return Status::invalid_argument("--device " + device + ": expected cpu, cuda or auto");
}

Result<std::unique_ptr<dist::Communicator>> join_tensor_parallel_group(const TensorParallelJoin& join,
                                                                       dist::RendezvousStore& store) {
  if (join.device == "cpu") {
    dist::GlooOptions gloo;
    gloo.rank = join.rank;
    gloo.world_size = join.tp;
    gloo.interface = join.interface;
    gloo.hostname = join.hostname;
    gloo.timeout = join.timeout;
    return dist::connect_gloo(gloo, store);
  }
  const int gpu = cuda_device_index(join.device);
  if (gpu < 0) {
    return Status::invalid_argument("--device " + join.device + ": a tensor-parallel rank runs on cpu or cuda:N");
  }
#if defined(LLMCTL_WITH_CUDA)
  dist::NcclOptions nccl;
  nccl.rank = join.rank;
  nccl.world_size = join.tp;
  nccl.device = gpu;
  nccl.interface = join.interface;
  nccl.hostname = join.hostname;
  nccl.timeout = join.timeout;
  ASSIGN_OR_RETURN(auto comm, dist::connect_nccl(nccl, store));
  return std::unique_ptr<dist::Communicator>(std::move(comm));
#else
  return Status::unavailable("--device " + join.device +
                             ": this llmctl was built without the CUDA backend (LLMCTL_CUDA=OFF), so it has no NCCL");
#endif
}

}  // namespace llmctl::cli
