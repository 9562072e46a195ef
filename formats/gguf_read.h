#pragma once
// GGUF reader (versions 2 and 3; the layout is in formats/gguf.h): the file is mmap'd and fully validated on
// open, tensors are zero-copy views into the mapping. Every error is one line naming the file and what is
// wrong: bad magic, unsupported version, truncated file, absurd counts or string lengths (bounded by the file
// size), unknown metadata value types, duplicate keys or tensor names, a general.alignment that is not a power
// of two, unknown tensor types, more than 4 dimensions, a row that is not a whole number of blocks, size
// overflow, tensor offsets that are misaligned or run past the end of the file, and overlapping tensors.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/gguf.h"
#include "formats/gguf_blocks.h"
#include "lib/core/fsutil.h"

namespace llmopt::gguf {

using VType = Metadata::VType;
const char* vtype_name(VType t);  // "UINT32", "STRING", "ARRAY", ...

// One metadata value. Integers keep their stored type in `type`; u holds unsigned ones (and BOOL), i signed
// ones, f floats; arrays hold their element type and items (which may be arrays themselves).
struct Value {
  VType type = VType::U8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  VType elem = VType::U8;    // arrays only
  std::vector<Value> items;  // arrays only
  bool is_integer() const;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major, outermost first (the file's ne reversed)
  Type type = Type::F32;
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;
  int64_t numel() const;
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }  // the innermost (contiguous) dimension
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
};

class File {
 public:
  static std::shared_ptr<const File> open(const std::filesystem::path& path);
  ~File();
  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
  uint64_t file_size() const { return size_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }  // file order
  const Value* find_key(const std::string& key) const;  // nullptr if absent
  bool has(const std::string& key) const { return find_key(key) != nullptr; }
  // Typed getters: Error "<file>: metadata key '<key>' is missing" or "... is <TYPE>, expected <what>".
  int64_t integer(const std::string& key) const;   // any integer type (a u64 beyond INT64_MAX is an error)
  int64_t integer_or(const std::string& key, int64_t dflt) const;
  double number(const std::string& key) const;     // F32, F64 or any integer type
  double number_or(const std::string& key, double dflt) const;
  bool boolean(const std::string& key) const;
  bool boolean_or(const std::string& key, bool dflt) const;
  std::string string(const std::string& key) const;
  std::string string_or(const std::string& key, const std::string& dflt) const;
  std::vector<std::string> strings(const std::string& key) const;  // ARRAY of STRING
  std::vector<int64_t> integers(const std::string& key) const;     // ARRAY of an integer type
  std::vector<double> numbers(const std::string& key) const;       // ARRAY of floats or integers

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // file order
  const TensorInfo* find(const std::string& name) const;            // nullptr if absent
  const TensorInfo& tensor(const std::string& name) const;          // Error naming the tensor if absent
  std::vector<float> to_f32(const TensorInfo& t) const;             // dequantized, [rows, cols] row-major

 private:
  File() = default;
  const Value& get(const std::string& key, const char* want) const;
  std::filesystem::path path_;
  MappedFile mapping_;
  const uint8_t* map_ = nullptr;  // its bytes
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  friend struct Parser;
  friend void place_tensors(File& f);
};

}  // namespace llmopt::gguf
