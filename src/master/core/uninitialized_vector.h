// A std::vector whose resize() and sized constructor leave new elements uninitialised: for
// buffers that a kernel overwrites entirely, where zero-filling them first is a serial pass over
// memory for nothing (the integrity checks' projection outputs).
#pragma once

#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace tempo {

/// std::allocator, except that value-initialisation (construct with no arguments) is
/// default-initialisation: a no-op for arithmetic types.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <class U>
  explicit DefaultInitAllocator(const DefaultInitAllocator<U>& /*other*/) noexcept {}

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

/// Elements of a sized construction or a resize() hold indeterminate values until written.
template <class T>
using UninitializedVector = std::vector<T, DefaultInitAllocator<T>>;

}  // namespace tempo
