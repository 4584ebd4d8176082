// An allocator for byte buffers that are filled right after they are sized:
// resize() leaves new elements default-initialized (for std::byte, untouched)
// instead of zeroing them. Zeroing a multi-GB weight buffer is one serial
// pass that also takes every page fault on one thread, before the threads
// that fill the buffer touch it again (--load-format dummy: about 0.3 s a GB).
#pragma once

#include <memory>
#include <new>
#include <utility>

namespace llmctl {

template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };

  UninitializedAllocator() noexcept = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  // Value-less construction (resize) default-initializes; everything else
  // (assign(n, value), push_back) constructs as usual.
  template <typename U>
  void construct(U* p) noexcept(noexcept(::new(static_cast<void*>(p)) U)) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    std::construct_at(p, std::forward<Args>(args)...);
  }
};

template <typename T, typename U>
bool operator==(const UninitializedAllocator<T>&, const UninitializedAllocator<U>&) noexcept {
  return true;
}

}  // namespace llmctl
