#include "lib/core/fsutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "lib/core/error.h"
#include "lib/core/log.h"

namespace llmopt {

MappedFile MappedFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {}: {}", path.string(), std::strerror(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    fail("cannot read {}: not a regular file", path.string());
  }
  MappedFile m;
  m.size_ = uint64_t(sb.st_size);
  if (m.size_ == 0) {
    ::close(fd);
    return m;
  }
  void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail("cannot mmap {}: {}", path.string(), std::strerror(errno));
  const uint64_t n = m.size_;
  m.data_ = std::shared_ptr<const std::byte>(static_cast<const std::byte*>(p),
                                             [n](const std::byte* q) { ::munmap(const_cast<std::byte*>(q), n); });
  return m;
}
namespace fs = std::filesystem;

bool is_weight_file(const fs::path& p) {
  static const char* const weight_ext[] = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack"};
  const std::string name = p.filename().string(), ext = p.extension().string();
  for (const char* e : weight_ext)
    if (ext == e) return true;
  return name == "config.json" || name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json";
}

namespace {

// Removes the temporary siblings ".NAME.tmp-PID-N" of `name` in `parent` whose process PID is gone: what a
// run killed before its commit() left behind. A live process's sibling (a concurrent run) is kept.
void remove_leftovers(const fs::path& parent, const std::string& name) {
  const std::string stem = "." + name + ".tmp-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const std::string f = e.path().filename().string();
    if (f.compare(0, stem.size(), stem) != 0) continue;
    const char* p = f.c_str() + stem.size();
    char* end = nullptr;
    const long pid = std::strtol(p, &end, 10);
    if (end == p || *end != '-' || pid <= 0 || pid == long(getpid())) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // still running (or not ours to judge)
    std::error_code rm;
    fs::remove_all(e.path(), rm);
    if (rm) log::warn("cannot remove {}, left by an interrupted run: {}", e.path().string(), rm.message());
    else log::info("removed {}, left by an interrupted run", e.path().string());
  }
}

}  // namespace

AtomicOutput::AtomicOutput(fs::path final_path, Kind kind) : final_(std::move(final_path)), kind_(kind) {
  static std::atomic<int> counter{0};
  if (final_.filename().empty()) final_ = final_.parent_path();
  fs::path parent = final_.parent_path().empty() ? fs::path(".") : final_.parent_path();
  if (!fs::is_directory(parent)) fail("output directory {} does not exist", parent.string());
  remove_leftovers(parent, final_.filename().string());
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
  // plain write(2), so that a full disk or a file-size limit is reported with its reason (ENOSPC, EFBIG)
  const int fd = ::open(out.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create {}: {}", out.path().string(), std::strerror(errno));
  for (size_t done = 0; done < data.size();) {
    const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      ::close(fd);
      fail("cannot write {}: {}", p.string(), std::strerror(err));
    }
    done += size_t(w);
  }
  if (::close(fd) != 0) fail("cannot write {}: {}", p.string(), std::strerror(errno));
  out.commit();
}

}  // namespace llmopt
