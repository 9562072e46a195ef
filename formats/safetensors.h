#pragma once
// safetensors: mmap'd zero-copy reader (single file or sharded via model.safetensors.index.json)
// and a streaming writer that holds at most one tensor in memory.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
// "__metadata__": {str: str}}, then the data section; offsets are relative to the data section.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/fsutil.h"

namespace llmopt::st {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets within the data section
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// A read-only typed view into mapped memory; valid while the File/TensorSet that produced it lives.
struct TensorView {
  const TensorInfo* info = nullptr;
  const std::byte* data = nullptr;

  DType dtype() const { return info->dtype; }
  const std::vector<int64_t>& shape() const { return info->shape; }
  int64_t numel() const { return info->numel(); }
  uint64_t nbytes() const { return info->nbytes(); }
  // Typed span; throws Error naming the tensor if T's size does not match the dtype size.
  template <typename T> std::span<const T> as() const;
  std::vector<float> to_f32() const;  // converts any float/int dtype
};

// One mmap'd .safetensors file, fully validated on open. Errors name the file and what is wrong:
// header length beyond the file or absurdly large, malformed JSON, unknown dtype, dtype x shape != byte
// length, offsets outside the data section, overlapping tensors, duplicate names.
// As in the reference (Rust) reader, the tensors must tile the data section exactly: a gap between tensors
// or bytes after the last one is an error too. Unlike it, duplicate JSON keys are an error (it keeps the
// last). Unknown extra fields in a tensor entry and a null "__metadata__" are accepted, as it does.
class File {
 public:
  static std::shared_ptr<const File> open(const std::filesystem::path& path);
  // Tensors held in memory (weights decoded from another format): `tensors` with offsets into `data`,
  // checked like a file's (dtype x shape = size, inside the data, no overlap). `name` is for messages.
  static std::shared_ptr<const File> in_memory(std::filesystem::path name, std::vector<TensorInfo> tensors,
                                               std::shared_ptr<const std::vector<std::byte>> data);
  ~File();
  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data-offset order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  TensorView view(const TensorInfo& t) const { return {&t, data_ + t.begin}; }
  uint64_t file_size() const { return size_; }

 private:
  File() = default;
  static void check_layout(File* f, uint64_t data_size);
  std::filesystem::path path_;
  MappedFile mapping_;             // open()'s file
  const std::byte* map_ = nullptr;  // its bytes
  const std::byte* data_ = nullptr;
  std::shared_ptr<const std::vector<std::byte>> owned_;  // in_memory's data
  uint64_t size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards listed in
// model.safetensors.index.json ("weight_map": name -> file). A name in the index that its shard does not
// hold, or a tensor present in two shards, is an error.
class TensorSet {
 public:
  static TensorSet open_dir(const std::filesystem::path& dir);
  static TensorSet open_file(const std::filesystem::path& file);
  static TensorSet of(std::shared_ptr<const File> file);  // one already opened (or in-memory) file
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  TensorView get(const std::string& name) const;  // throws Error naming the tensor if absent
  const TensorInfo& info(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::vector<std::shared_ptr<const File>>& files() const { return files_; }

 private:
  std::vector<std::shared_ptr<const File>> files_;
  std::map<std::string, std::pair<size_t, const TensorInfo*>> where_;
  std::filesystem::path source_;  // the directory or file, for messages
};

// Streaming writer. All tensors are declared up front (name, dtype, shape) so the header can be written
// first; then each tensor's bytes are written once, in any order, and finish() checks that every tensor
// was written and renames the temporary sibling into place. Destroying an unfinished Writer removes it.
// Layout: data contiguous, by element size (largest first, then declared order) so that every tensor is
// aligned to its element size; header = "__metadata__" (omitted if empty) then the tensors in data order,
// compact JSON padded with spaces to a multiple of 8 bytes. Declaring the tensors in the order the Python
// writer picks (the order File::tensors() lists them) reproduces its file byte for byte (given at most one
// metadata key: it orders several at random).
class Writer {
 public:
  Writer(const std::filesystem::path& path, const std::vector<TensorInfo>& specs,
         const std::map<std::string, std::string>& metadata = {});
  ~Writer();
  void write(const std::string& name, const void* bytes, size_t nbytes);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A checkpoint split into shards the way Hugging Face does it: tensors in declared order, a new shard when
// the next tensor would push the current one past max_shard_bytes of data (a bigger tensor gets a shard of
// its own). One shard is written as model.safetensors; several as model-00001-of-0000N.safetensors plus
// model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map": {name: shard}}), written last.
// Every shard carries `metadata`. Each shard is atomic; the directory as a whole is the caller's to make
// atomic (AtomicOutput of Kind::Directory).
class ShardedWriter {
 public:
  ShardedWriter(const std::filesystem::path& dir, const std::vector<TensorInfo>& specs, uint64_t max_shard_bytes,
                const std::map<std::string, std::string>& metadata = {});
  ~ShardedWriter();
  void write(const std::string& name, const void* bytes, size_t nbytes);
  void finish();
  const std::vector<std::string>& shard_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void check_view_elem_size(const TensorInfo& t, size_t elem_size);  // throws Error on mismatch

template <typename T> std::span<const T> TensorView::as() const {
  check_view_elem_size(*info, sizeof(T));
  return {reinterpret_cast<const T*>(data), size_t(numel())};
}

}  // namespace llmopt::st
