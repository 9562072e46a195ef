#include "formats/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"

namespace llmopt::st {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr uint64_t kMaxHeader = 100'000'000;  // the same limit as the Rust `safetensors` crate
const char* kIndexName = "model.safetensors.index.json";
const char* kSingleName = "model.safetensors";

// Parses `text` as JSON, rejecting duplicate keys in any object (nlohmann would keep the last one).
json parse_json_strict(std::string_view text, const fs::path& path, const char* what) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  auto cb = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) keys.emplace_back();
    else if (ev == json::parse_event_t::object_end) keys.pop_back();
    else if (ev == json::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second)
      fail("{}: malformed {}: duplicate key '{}'", path.string(), what, parsed.get<std::string>());
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    fail("{}: malformed {}: {}", path.string(), what, e.what());
  }
}

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

uint64_t checked_nbytes(const TensorInfo& t, bool& overflow) {
  uint64_t n = dtype_size(t.dtype);
  overflow = false;
  for (int64_t d : t.shape) overflow |= __builtin_mul_overflow(n, uint64_t(d), &n);
  return n;
}

// One header entry {"dtype", "shape", "data_offsets"} -> TensorInfo; unknown extra fields are ignored
// (as the Python package does).
TensorInfo parse_entry(const std::string& name, const json& v, const fs::path& path) {
  auto bad = [&](std::string_view why) { fail("{}: tensor '{}': {}", path.string(), name, why); };
  if (!v.is_object()) bad("header entry is not a JSON object");
  TensorInfo t;
  t.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) bad("missing or non-string \"dtype\"");
  auto d = dtype_from_name(dt->get<std::string>());
  if (!d) bad(fmt::format("unknown or unsupported dtype '{}'", dt->get<std::string>()));
  t.dtype = *d;
  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) bad("missing or non-array \"shape\"");
  for (const auto& x : *sh) {
    if (!x.is_number_unsigned() || x.get<uint64_t>() > uint64_t(INT64_MAX))
      bad(fmt::format("shape {} has a dimension that is not a non-negative integer", sh->dump()));
    t.shape.push_back(x.get<int64_t>());
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    bad("\"data_offsets\" is not a pair of non-negative integers");
  t.begin = (*off)[0].get<uint64_t>();
  t.end = (*off)[1].get<uint64_t>();
  return t;
}

void write_all(int fd, const void* p, size_t n, uint64_t at, const fs::path& path) {
  auto* b = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, b, std::min<size_t>(n, size_t(1) << 30), off_t(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("cannot write {}: {}", path.string(), std::strerror(errno));
    b += w, n -= size_t(w), at += uint64_t(w);
  }
}
}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void check_view_elem_size(const TensorInfo& t, size_t elem_size) {
  if (dtype_size(t.dtype) != elem_size)
    fail("tensor '{}' has dtype {} ({} bytes per element) and cannot be viewed as a {}-byte type", t.name,
         dtype_name(t.dtype), dtype_size(t.dtype), elem_size);
}

std::vector<float> TensorView::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  llmopt::to_f32(dtype(), data, out.data(), out.size());
  return out;
}

// ---------------------------------------------------------------------------------------------- File

std::shared_ptr<const File> File::open(const fs::path& path) {
  std::shared_ptr<File> f(new File());
  f->path_ = path;
  f->mapping_ = MappedFile::open(path);
  f->map_ = f->mapping_.data();
  f->size_ = f->mapping_.size();
  if (f->size_ < 8)
    fail("{}: truncated safetensors file: {} bytes, shorter than the 8-byte header length", path.string(),
         f->size_);

  uint64_t n = 0;
  std::memcpy(&n, f->map_, 8);  // little-endian u64 (all supported hosts are little-endian)
  if (n > kMaxHeader)
    fail("{}: header length {} is absurdly large (limit {} bytes); not a safetensors file?", path.string(), n,
         kMaxHeader);
  if (n > f->size_ - 8)
    fail("{}: header length {} runs beyond the end of the file ({} bytes)", path.string(), n, f->size_);
  f->data_ = f->map_ + 8 + n;
  const uint64_t data_size = f->size_ - 8 - n;

  json h = parse_json_strict({reinterpret_cast<const char*>(f->map_ + 8), size_t(n)}, path, "JSON header");
  if (!h.is_object()) fail("{}: header is not a JSON object but {}", path.string(), h.type_name());

  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_null()) continue;  // the Python package accepts null metadata
      if (!it->is_object()) fail("{}: \"__metadata__\" is not a JSON object", path.string());
      for (auto m2 = it->begin(); m2 != it->end(); ++m2) {
        if (!m2->is_string())
          fail("{}: \"__metadata__\" value of '{}' is not a string but {}", path.string(), m2.key(),
               m2->type_name());
        f->metadata_[m2.key()] = m2->get<std::string>();
      }
      continue;
    }
    f->tensors_.push_back(parse_entry(it.key(), *it, path));
  }

  check_layout(f.get(), data_size);
  return f;
}

// Every tensor's size is dtype x shape, inside the data section; sorted by offset, they tile it exactly.
void File::check_layout(File* f, uint64_t data_size) {
  const fs::path& path = f->path_;
  for (const auto& t : f->tensors_) {
    if (t.end < t.begin)
      fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin", path.string(), t.name, t.begin, t.end);
    if (t.end > data_size)
      fail("{}: tensor '{}': data_offsets [{}, {}] lie outside the data section ({} bytes)", path.string(),
           t.name, t.begin, t.end, data_size);
    bool overflow = false;
    uint64_t want = checked_nbytes(t, overflow);
    if (overflow || want != t.nbytes())
      fail("{}: tensor '{}': {} x shape {} needs {} bytes but data_offsets [{}, {}] hold {}", path.string(),
           t.name, dtype_name(t.dtype), shape_str(t.shape), overflow ? std::string("too many") : fmt::to_string(want),
           t.begin, t.end, t.nbytes());
  }
  // Like the Rust reader, the tensors must tile the data section exactly: no overlap, no gap, nothing after.
  std::sort(f->tensors_.begin(), f->tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t pos = 0;
  for (size_t i = 0; i < f->tensors_.size(); ++i) {
    const auto& t = f->tensors_[i];
    if (t.begin < pos)
      fail("{}: tensor '{}' at [{}, {}] overlaps tensor '{}' at [{}, {}]", path.string(), t.name, t.begin, t.end,
           f->tensors_[i - 1].name, f->tensors_[i - 1].begin, f->tensors_[i - 1].end);
    if (t.begin > pos)
      fail("{}: tensor '{}' starts at {} leaving a gap of {} unused bytes in the data section (not allowed, as "
           "in the reference safetensors reader)",
           path.string(), t.name, t.begin, t.begin - pos);
    pos = t.end;
  }
  if (pos != data_size)
    fail("{}: the data section has {} bytes but the tensors cover only {}: {} trailing bytes", path.string(),
         data_size, pos, data_size - pos);
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
}

std::shared_ptr<const File> File::in_memory(fs::path name, std::vector<TensorInfo> tensors,
                                            std::shared_ptr<const std::vector<std::byte>> data) {
  std::shared_ptr<File> f(new File());
  f->path_ = std::move(name);
  f->tensors_ = std::move(tensors);
  f->owned_ = std::move(data);
  f->data_ = f->owned_->data();
  f->size_ = f->owned_->size();
  check_layout(f.get(), f->size_);
  for (size_t i = 0; i < f->tensors_.size(); ++i)
    if (f->index_.count(f->tensors_[i].name) && f->index_[f->tensors_[i].name] != i)
      fail("{}: duplicate tensor name '{}'", f->path_.string(), f->tensors_[i].name);
  return f;
}

File::~File() = default;

const TensorInfo* File::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ----------------------------------------------------------------------------------------- TensorSet

TensorSet TensorSet::open_file(const fs::path& file) {
  TensorSet s;
  s.source_ = file;
  s.files_.push_back(File::open(file));
  for (const auto& t : s.files_[0]->tensors()) s.where_[t.name] = {0, &t};
  return s;
}

TensorSet TensorSet::of(std::shared_ptr<const File> file) {
  TensorSet s;
  s.source_ = file->path();
  s.files_.push_back(std::move(file));
  for (const auto& t : s.files_[0]->tensors()) s.where_[t.name] = {0, &t};
  return s;
}

TensorSet TensorSet::open_dir(const fs::path& dir) {
  if (fs::is_regular_file(dir / kSingleName)) {
    TensorSet s = open_file(dir / kSingleName);
    s.source_ = dir;
    return s;
  }
  const fs::path index_path = dir / kIndexName;
  if (!fs::is_regular_file(index_path))
    fail("{}: no {} or {} in this directory", dir.string(), kSingleName, kIndexName);
  json idx = parse_json_strict(read_file(index_path), index_path, "index");
  if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
    fail("{}: no \"weight_map\" object", index_path.string());

  TensorSet s;
  s.source_ = dir;
  std::map<std::string, size_t> shard_of_file;  // shard file name -> index in files_
  for (const auto& [name, v] : idx["weight_map"].items()) {
    if (!v.is_string()) fail("{}: weight_map entry '{}' is not a file name string", index_path.string(), name);
    const std::string shard = v.get<std::string>();
    if (!shard_of_file.count(shard)) {
      // a file of this directory (as transformers writes them), never a path elsewhere
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        fail("{}: tensor '{}' is mapped to '{}', which is not a file name in {}", index_path.string(), name, shard,
             dir.string());
      std::error_code ec;  // (the throwing form would make a too-long name an internal error)
      if (!fs::is_regular_file(dir / shard, ec))
        fail("{}: tensor '{}' is mapped to shard {}, which does not exist", index_path.string(), name, shard);
      shard_of_file[shard] = s.files_.size();
      s.files_.push_back(File::open(dir / shard));
    }
    size_t fi = shard_of_file[shard];
    const TensorInfo* t = s.files_[fi]->find(name);
    if (!t) fail("{}: tensor '{}' is mapped to shard {}, which does not hold it", index_path.string(), name, shard);
    s.where_[name] = {fi, t};
  }
  // Every tensor of every shard is part of the set (as transformers loads it), but only once.
  std::map<std::string, size_t> seen;
  for (size_t fi = 0; fi < s.files_.size(); ++fi) {
    for (const auto& t : s.files_[fi]->tensors()) {
      auto [it, fresh] = seen.emplace(t.name, fi);
      if (!fresh)
        fail("{}: tensor '{}' appears in two shards: {} and {}", dir.string(), t.name,
             s.files_[it->second]->path().filename().string(), s.files_[fi]->path().filename().string());
      if (!s.where_.count(t.name)) {
        log::warn("{}: tensor '{}' in {} is not listed in {}", dir.string(), t.name,
                  s.files_[fi]->path().filename().string(), kIndexName);
        s.where_[t.name] = {fi, &t};
      }
    }
  }
  return s;
}

const TensorInfo& TensorSet::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("tensor '{}' not found in {}", name, source_.string());
  return *it->second.second;
}

TensorView TensorSet::get(const std::string& name) const {
  const TensorInfo& t = info(name);
  return files_[where_.at(name).first]->view(t);
}

std::vector<std::string> TensorSet::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [n, w] : where_) out.push_back(n);
  return out;
}

// -------------------------------------------------------------------------------------------- Writer

struct Writer::Impl {
  AtomicOutput out;
  int fd = -1;
  std::vector<TensorInfo> specs;
  std::map<std::string, size_t> index;
  std::vector<bool> written;
  uint64_t data_start = 0;
  bool finished = false;
  explicit Impl(const fs::path& p) : out(p, AtomicOutput::Kind::File) {}
  ~Impl() {
    if (fd >= 0) ::close(fd);
  }
};

Writer::Writer(const fs::path& path, const std::vector<TensorInfo>& specs,
               const std::map<std::string, std::string>& metadata)
    : impl_(std::make_unique<Impl>(path)) {
  Impl& w = *impl_;
  // Data is contiguous, ordered by element size (largest first, declared order within a size) so every
  // tensor is aligned to its element size (no gaps are allowed to pad); the header lists __metadata__ first,
  // then the tensors in data order, compact, padded with spaces to a multiple of 8 (as the Python writer does).
  std::vector<const TensorInfo*> order;
  for (const auto& s : specs) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const TensorInfo* a, const TensorInfo* b) { return dtype_size(a->dtype) > dtype_size(b->dtype); });
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    h["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) h["__metadata__"][k] = v;
  }
  uint64_t pos = 0;
  for (const TensorInfo* sp : order) {
    const TensorInfo& s = *sp;
    if (s.name == "__metadata__") fail("cannot write {}: '__metadata__' is not a valid tensor name", path.string());
    if (!w.index.emplace(s.name, w.specs.size()).second)
      fail("cannot write {}: tensor '{}' is declared twice", path.string(), s.name);
    for (int64_t d : s.shape)
      if (d < 0) fail("cannot write {}: tensor '{}' has negative shape {}", path.string(), s.name, shape_str(s.shape));
    TensorInfo t{s.name, s.dtype, s.shape, pos, 0};
    bool overflow = false;
    t.end = pos + checked_nbytes(t, overflow);
    if (overflow) fail("cannot write {}: tensor '{}' shape {} is too large", path.string(), s.name, shape_str(s.shape));
    pos = t.end;
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
    w.specs.push_back(std::move(t));
  }
  w.written.assign(w.specs.size(), false);
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  w.data_start = 8 + header.size();

  w.fd = ::open(w.out.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd < 0) fail("cannot create {}: {}", w.out.path().string(), std::strerror(errno));
  const uint64_t n = header.size();  // little-endian u64
  write_all(w.fd, &n, 8, 0, path);
  write_all(w.fd, header.data(), header.size(), 8, path);
  if (::ftruncate(w.fd, off_t(w.data_start + pos)) != 0)
    fail("cannot write {}: {}", path.string(), std::strerror(errno));
}

Writer::~Writer() = default;  // Impl closes the descriptor; AtomicOutput removes an unfinished file

void Writer::write(const std::string& name, const void* bytes, size_t nbytes) {
  Impl& w = *impl_;
  const fs::path& path = w.out.final_path();
  if (w.finished) fail("cannot write tensor '{}' to {}: the file is already finished", name, path.string());
  auto it = w.index.find(name);
  if (it == w.index.end()) fail("cannot write tensor '{}' to {}: it was not declared", name, path.string());
  const TensorInfo& t = w.specs[it->second];
  if (w.written[it->second]) fail("cannot write tensor '{}' to {}: it was already written", name, path.string());
  if (nbytes != t.nbytes())
    fail("cannot write tensor '{}' to {}: got {} bytes, but {} x shape {} needs {}", name, path.string(), nbytes,
         dtype_name(t.dtype), shape_str(t.shape), t.nbytes());
  write_all(w.fd, bytes, nbytes, w.data_start + t.begin, path);
  w.written[it->second] = true;
}

void Writer::finish() {
  Impl& w = *impl_;
  const fs::path& path = w.out.final_path();
  if (w.finished) fail("cannot finish {}: already finished", path.string());
  size_t missing = size_t(std::count(w.written.begin(), w.written.end(), false));
  if (missing) {
    size_t i = size_t(std::find(w.written.begin(), w.written.end(), false) - w.written.begin());
    fail("cannot finish {}: {} of {} tensors were never written, e.g. '{}'", path.string(), missing,
         w.specs.size(), w.specs[i].name);
  }
  int fd = w.fd;
  w.fd = -1;
  if (::close(fd) != 0) fail("cannot write {}: {}", path.string(), std::strerror(errno));
  w.out.commit();
  w.finished = true;
}

// ------------------------------------------------------------------------------------- ShardedWriter

struct ShardedWriter::Impl {
  fs::path dir;
  std::vector<std::string> shard_names;
  std::vector<std::unique_ptr<Writer>> shards;
  std::map<std::string, size_t> shard_of;  // tensor -> shard
  uint64_t total = 0;
  bool finished = false;
};

ShardedWriter::ShardedWriter(const fs::path& dir, const std::vector<TensorInfo>& specs, uint64_t max_shard_bytes,
                             const std::map<std::string, std::string>& metadata)
    : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.dir = dir;
  // Greedy split in declared order; a tensor larger than the limit gets a shard of its own.
  std::vector<std::vector<TensorInfo>> groups(1);
  uint64_t cur = 0;
  for (const auto& s : specs) {
    TensorInfo t = s;
    bool overflow = false;
    uint64_t nb = checked_nbytes(t, overflow);
    if (!groups.back().empty() && cur + nb > max_shard_bytes) groups.emplace_back(), cur = 0;
    groups.back().push_back(t);
    cur += nb;
    w.total += nb;
  }
  const size_t n = groups.size();
  for (size_t i = 0; i < n; ++i)
    w.shard_names.push_back(n == 1 ? kSingleName : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n));
  for (size_t i = 0; i < n; ++i) {
    for (const auto& t : groups[i])
      if (!w.shard_of.emplace(t.name, i).second)
        fail("cannot write {}: tensor '{}' is declared twice", dir.string(), t.name);
    w.shards.push_back(std::make_unique<Writer>(dir / w.shard_names[i], groups[i], metadata));
  }
}

ShardedWriter::~ShardedWriter() = default;

const std::vector<std::string>& ShardedWriter::shard_names() const { return impl_->shard_names; }

void ShardedWriter::write(const std::string& name, const void* bytes, size_t nbytes) {
  auto it = impl_->shard_of.find(name);
  if (it == impl_->shard_of.end())
    fail("cannot write tensor '{}' to {}: it was not declared", name, impl_->dir.string());
  impl_->shards[it->second]->write(name, bytes, nbytes);
}

void ShardedWriter::finish() {
  Impl& w = *impl_;
  if (w.finished) fail("cannot finish {}: already finished", w.dir.string());
  for (auto& s : w.shards) s->finish();
  if (w.shards.size() > 1) {
    json idx = {{"metadata", {{"total_size", w.total}}}, {"weight_map", json::object()}};
    for (const auto& [name, i] : w.shard_of) idx["weight_map"][name] = w.shard_names[i];
    write_file_atomic(w.dir / kIndexName, idx.dump(2) + "\n");
  }
  w.finished = true;
}

}  // namespace llmopt::st
