#include "lib/core/fsutil.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "lib/core/error.h"

namespace llmopt {
namespace fs = std::filesystem;

bool is_weight_file(const fs::path& p) {
  static const char* const weight_ext[] = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack"};
  const std::string name = p.filename().string(), ext = p.extension().string();
  for (const char* e : weight_ext)
    if (ext == e) return true;
  return name == "config.json" || name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json";
}

AtomicOutput::AtomicOutput(fs::path final_path, Kind kind) : final_(std::move(final_path)), kind_(kind) {
  static std::atomic<int> counter{0};
  if (final_.filename().empty()) final_ = final_.parent_path();
  fs::path parent = final_.parent_path().empty() ? fs::path(".") : final_.parent_path();
  if (!fs::is_directory(parent)) fail("output directory {} does not exist", parent.string());
  if (kind_ == Kind::Directory && fs::exists(final_) &&
      (!fs::is_directory(final_) || !fs::is_empty(final_)))
    fail("output {} already exists and is not an empty directory", final_.string());
  tmp_ = parent / fmt::format(".{}.tmp-{}-{}", final_.filename().string(), getpid(), counter++);
  std::error_code ec;
  fs::remove_all(tmp_, ec);
  if (kind_ == Kind::Directory && !fs::create_directory(tmp_, ec))
    fail("cannot create {}: {}", tmp_.string(), ec.message());
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void AtomicOutput::commit() {
  std::error_code ec;
  if (kind_ == Kind::Directory && fs::is_directory(final_)) fs::remove(final_, ec);  // empty by construction
  fs::rename(tmp_, final_, ec);
  if (ec) fail("cannot rename {} to {}: {}", tmp_.string(), final_.string(), ec.message());
  committed_ = true;
}

std::string read_file(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) fail("cannot read {}: it is a directory, not a file", p.string());
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("cannot read {}: {}", p.string(), std::strerror(errno));
  try {  // libstdc++ reports a read error (EIO, ...) by throwing from the stream buffer
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return s;
  } catch (const std::ios_base::failure& e) {
    fail("cannot read {}: {}", p.string(), e.what());
  }
}

void write_file_atomic(const fs::path& p, std::string_view data) {
  AtomicOutput out(p, AtomicOutput::Kind::File);
  {
    std::ofstream f(out.path(), std::ios::binary);
    f.write(data.data(), std::streamsize(data.size()));
    if (!f) fail("cannot write {}", out.path().string());
  }
  out.commit();
}

}  // namespace llmopt
