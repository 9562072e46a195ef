#pragma once
// Outputs are written to a temporary sibling and renamed into place only when complete,
// so a failed run never leaves a partial file or directory behind.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace llmopt {

// A whole regular file mapped read-only (MAP_PRIVATE), unmapped when the last copy goes. An empty file maps to
// no bytes. Error naming the file when it cannot be opened, is not a regular file, or cannot be mapped.
class MappedFile {
 public:
  MappedFile() = default;
  static MappedFile open(const std::filesystem::path& path);
  const std::byte* data() const { return data_.get(); }
  uint64_t size() const { return size_; }

 private:
  std::shared_ptr<const std::byte> data_;  // its deleter unmaps
  uint64_t size_ = 0;
};

// A file or directory under construction at a hidden sibling of `final_path`.
// commit() renames it into place (replacing an existing file / empty-or-absent directory);
// the destructor removes it if commit() was never called. A run killed before that (SIGKILL, power) leaves
// the sibling ".NAME.tmp-PID-N" behind and never a partial NAME; the constructor removes such leftovers
// of processes that no longer exist.
class AtomicOutput {
 public:
  enum class Kind { File, Directory };
  AtomicOutput(std::filesystem::path final_path, Kind kind);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& path() const { return tmp_; }  // write here
  const std::filesystem::path& final_path() const { return final_; }
  void commit();

 private:
  std::filesystem::path final_, tmp_;
  Kind kind_;
  bool committed_ = false;
};

// A checkpoint's weights (any format), their shard index, or config.json: the files of a model directory
// that an output directory rewrites instead of copying (tokenizer and generation files are copied).
bool is_weight_file(const std::filesystem::path& p);

std::string read_file(const std::filesystem::path& p);  // whole file; Error naming it if unreadable
void write_file_atomic(const std::filesystem::path& p, std::string_view data);

}  // namespace llmopt
