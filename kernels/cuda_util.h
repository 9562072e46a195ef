#pragma once
// Host-side CUDA helpers usable from plain C++ (no CUDA headers needed by includers):
// error checks that throw llmopt::Error, a device probe that never crashes, an RAII device buffer.
#include <cstddef>

namespace llmopt {

// Throws llmopt::Error("CUDA error in <expr> at <file>:<line>: <name>: <message>") when err != 0 (cudaSuccess).
// err is a cudaError_t passed as int so this header stays free of CUDA headers.
void cuda_check(int err, const char* expr, const char* file, int line);
#define LLMOPT_CUDA_CHECK(expr) ::llmopt::cuda_check(static_cast<int>(expr), #expr, __FILE__, __LINE__)

// True when a CUDA driver and at least one device are usable. False (never throws, never aborts)
// when there is no driver, no device, or the driver is too old for the runtime. Probed once.
bool cuda_device_available();

// Waits for all work on the current device; throws on any pending (asynchronous) error.
void cuda_synchronize();

// Owns `bytes` of device memory (cudaMalloc / cudaFree). Move-only. Copies are synchronous.
class CudaBuffer {
 public:
  CudaBuffer() = default;
  explicit CudaBuffer(size_t bytes);
  ~CudaBuffer();
  CudaBuffer(CudaBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  CudaBuffer& operator=(CudaBuffer&& o) noexcept;
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;

  void* data() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

  void upload(const void* host, size_t bytes);          // host -> device, bytes <= this->bytes()
  void download(void* host, size_t bytes) const;        // device -> host, bytes <= this->bytes()

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace llmopt
