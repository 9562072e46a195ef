#pragma once
// Included first by every CPU kernel source that CMake compiles once per instruction set (see
// LLMOPT_CPU_KERNEL_SRCS in CMakeLists.txt): each copy is built with -DLLMOPT_CPU_VARIANT=<name> and that
// variant's -m flags, and puts its code in namespace llmopt::backend::<name> (LLMOPT_CPU_NS).
//
// The copies are linked into one binary, so nothing they emit out of line may share a symbol name across
// variants, or the linker would keep one copy (perhaps the AVX-512 one) for all of them:
//  - Eigen's namespace is renamed per variant (the macro below), so its GEMM kernels are distinct;
//  - kernel code uses no std containers or fmt (Scratch below instead of std::vector; argument checks and
//    errors live in the dispatcher, dispatch.cpp, which is compiled once for the baseline).
#ifndef LLMOPT_CPU_VARIANT
#error "compile this file through the LLMOPT_CPU_KERNEL_SRCS variants in CMakeLists.txt"
#endif
#ifdef EIGEN_CORE_H
#error "lib/backend/cpu/variant.h must be included before Eigen"
#endif

#include <cstddef>
#include <memory>

#define LLMOPT_CPU_NS LLMOPT_CPU_VARIANT
#define LLMOPT_CPU_CAT2(a, b) a##b
#define LLMOPT_CPU_CAT(a, b) LLMOPT_CPU_CAT2(a, b)
#define Eigen LLMOPT_CPU_CAT(Eigen_, LLMOPT_CPU_VARIANT)

namespace llmopt::backend::LLMOPT_CPU_NS {

// A grow-only per-thread buffer (uninitialised contents).
template <typename T> struct Scratch {
  std::unique_ptr<T[]> p;
  size_t n = 0;
  T* get(size_t m) {
    if (m > n) p.reset(new T[m]), n = m;
    return p.get();
  }
};

}  // namespace llmopt::backend::LLMOPT_CPU_NS
