#include "formats/gguf_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include <fmt/ranges.h>

#include "lib/core/error.h"

namespace llmopt::gguf {
namespace fs = std::filesystem;

namespace {
constexpr int kMaxDims = 4;    // GGML_MAX_DIMS
constexpr int kMaxDepth = 8;   // nesting of arrays in arrays

// Bytes of one element of a fixed-size value type; 0 for STRING and ARRAY.
size_t fixed_size(VType t) {
  switch (t) {
    case VType::U8: case VType::I8: case VType::BOOL: return 1;
    case VType::U16: case VType::I16: return 2;
    case VType::U32: case VType::I32: case VType::F32: return 4;
    case VType::U64: case VType::I64: case VType::F64: return 8;
    default: return 0;
  }
}
}  // namespace

const char* vtype_name(VType t) {
  static const char* names[] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
  return uint32_t(t) < 13 ? names[uint32_t(t)] : "?";
}

bool Value::is_integer() const {
  return type != VType::F32 && type != VType::F64 && type != VType::BOOL && fixed_size(type) != 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A bounds-checked cursor over the mapping; every failure names the file and the offset.
struct Parser {
  const File& f;
  uint64_t pos = 0;

  uint64_t left() const { return f.size_ - pos; }
  void need(uint64_t n, const char* what) const {
    if (n > left())
      fail("{}: truncated GGUF file: {} at offset {} needs {} bytes, only {} left", f.path_.string(), what, pos, n, left());
  }
  template <typename T> T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, f.map_ + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    const uint64_t at = pos, n = read<uint64_t>(what);
    if (n > left())
      fail("{}: {} at offset {} has length {}, beyond the {} bytes left in the file", f.path_.string(), what, at, n, left());
    std::string s(reinterpret_cast<const char*>(f.map_ + pos), size_t(n));
    pos += n;
    return s;
  }
  VType vtype(const std::string& key) {
    const uint64_t at = pos;
    const uint32_t t = read<uint32_t>("a value type");
    if (t > uint32_t(VType::F64)) fail("{}: metadata key '{}': unknown value type {} at offset {}", f.path_.string(), key, t, at);
    return VType(t);
  }
  Value value(VType t, const std::string& key, int depth);
  Value array(const std::string& key, int depth);
  TensorInfo tensor_info();
};

Value Parser::value(VType t, const std::string& key, int depth) {
  Value v;
  v.type = t;
  switch (t) {
    case VType::U8: v.u = read<uint8_t>("a UINT8 value"); break;
    case VType::I8: v.i = read<int8_t>("an INT8 value"); break;
    case VType::U16: v.u = read<uint16_t>("a UINT16 value"); break;
    case VType::I16: v.i = read<int16_t>("an INT16 value"); break;
    case VType::U32: v.u = read<uint32_t>("a UINT32 value"); break;
    case VType::I32: v.i = read<int32_t>("an INT32 value"); break;
    case VType::U64: v.u = read<uint64_t>("a UINT64 value"); break;
    case VType::I64: v.i = read<int64_t>("an INT64 value"); break;
    case VType::F32: v.f = read<float>("a FLOAT32 value"); break;
    case VType::F64: v.f = read<double>("a FLOAT64 value"); break;
    case VType::BOOL: {
      const uint8_t b = read<uint8_t>("a BOOL value");
      if (b > 1) fail("{}: metadata key '{}': BOOL value {} is neither 0 nor 1", f.path_.string(), key, b);
      v.u = b;
      break;
    }
    case VType::STRING: v.s = str("a string value"); break;
    case VType::ARRAY: return array(key, depth + 1);
  }
  return v;
}

Value Parser::array(const std::string& key, int depth) {
  if (depth > kMaxDepth) fail("{}: metadata key '{}': arrays nested deeper than {}", f.path_.string(), key, kMaxDepth);
  Value v;
  v.type = VType::ARRAY;
  v.elem = vtype(key);
  const uint64_t at = pos, n = read<uint64_t>("an array length");
  // Every element takes at least its fixed size (8 bytes for a string's length, 12 for an array's header).
  const uint64_t min_size = fixed_size(v.elem) ? fixed_size(v.elem) : v.elem == VType::STRING ? 8 : 12;
  if (n > left() / min_size)
    fail("{}: metadata key '{}': array length {} at offset {} is absurd: {} elements of {} cannot fit in the {} bytes left",
         f.path_.string(), key, n, at, n, vtype_name(v.elem), left());
  v.items.reserve(size_t(n));
  for (uint64_t k = 0; k < n; ++k) v.items.push_back(value(v.elem, key, depth));
  return v;
}

// One tensor info: name, dimensions (stored innermost first), type, offset; sizes checked against overflow.
TensorInfo Parser::tensor_info() {
  const std::string p = f.path_.string();
  TensorInfo t;
  t.name = str("a tensor name");
  const uint32_t nd = read<uint32_t>("a tensor's dimension count");
  if (nd == 0 || nd > kMaxDims) fail("{}: tensor '{}' has {} dimensions (1 to {} allowed)", p, t.name, nd, kMaxDims);
  for (uint32_t d = 0; d < nd; ++d) {
    const uint64_t ne = read<uint64_t>("a tensor dimension");
    if (ne > uint64_t(INT64_MAX)) fail("{}: tensor '{}' has dimension {} = {}, beyond INT64_MAX", p, t.name, d, ne);
    t.shape.insert(t.shape.begin(), int64_t(ne));
  }
  const uint32_t id = read<uint32_t>("a tensor type");
  const auto type = type_from_id(id);
  if (!type) fail("{}: tensor '{}' has unknown or unsupported ggml type {}", p, t.name, id);
  t.type = *type;
  t.offset = read<uint64_t>("a tensor offset");
  if (t.shape.back() % block_elems(t.type) != 0)
    fail("{}: tensor '{}': {} rows of {} elements are not a whole number of {}-element blocks", p, t.name,
         type_name(t.type), t.shape.back(), block_elems(t.type));
  uint64_t nb = uint64_t(t.shape.back() / block_elems(t.type)) * block_bytes(t.type);
  bool overflow = false;
  for (size_t d = 0; d + 1 < t.shape.size(); ++d) overflow |= __builtin_mul_overflow(nb, uint64_t(t.shape[d]), &nb);
  if (overflow) fail("{}: tensor '{}': the size of {} x {} elements overflows", p, t.name, type_name(t.type), fmt::join(t.shape, " x "));
  t.nbytes = nb;
  if (t.offset % f.alignment_ != 0)
    fail("{}: tensor '{}': offset {} is not a multiple of the alignment {}", p, t.name, t.offset, f.alignment_);
  return t;
}

// Data pointers, with every tensor inside the file and no two overlapping.
void place_tensors(File& file) {
  File* f = &file;  // (a friend of File)
  const std::string p = f->path_.string();
  const uint64_t data_size = f->data_offset_ <= f->size_ ? f->size_ - f->data_offset_ : 0;
  for (auto& t : f->tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail("{}: tensor '{}': {} bytes at data offset {} run past the end of the file (data section of {} bytes{})", p,
           t.name, t.nbytes, t.offset, data_size, f->data_offset_ > f->size_ ? ", truncated before it starts" : "");
    t.data = f->map_ + f->data_offset_ + t.offset;
  }
  std::vector<const TensorInfo*> by_offset;
  for (auto& t : f->tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo *a = by_offset[k - 1], *b = by_offset[k];
    if (b->offset < a->offset + a->nbytes)
      fail("{}: tensor '{}' at data offset {} overlaps tensor '{}' at [{}, {})", p, b->name, b->offset, a->name,
           a->offset, a->offset + a->nbytes);
  }
}

std::shared_ptr<const File> File::open(const fs::path& path) {
  std::shared_ptr<File> f(new File());
  f->path_ = path;
  f->mapping_ = MappedFile::open(path);
  f->map_ = reinterpret_cast<const uint8_t*>(f->mapping_.data());
  f->size_ = f->mapping_.size();
  if (f->size_ < 24)
    fail("{}: truncated GGUF file: {} bytes, shorter than the 24-byte header", path.string(), f->size_);
  const std::string p = path.string();

  Parser r{*f};
  if (std::memcmp(f->map_, "GGUF", 4) != 0) fail("{}: not a GGUF file (bad magic; expected \"GGUF\")", p);
  r.pos = 4;
  f->version_ = r.read<uint32_t>("the version");
  if (f->version_ != 2 && f->version_ != 3)
    fail("{}: unsupported GGUF version {} (this reader supports 2 and 3{})", p, f->version_,
         f->version_ > 0xffff ? "; a big-endian file?" : "");
  const uint64_t n_tensors = r.read<uint64_t>("the tensor count"), n_kv = r.read<uint64_t>("the metadata count");
  // A metadata entry takes at least 12 bytes (key length, type) + 1, a tensor info at least 8 + 4 + 4 + 8.
  if (n_kv > r.left() / 13) fail("{}: metadata count {} is absurd for a file of {} bytes", p, n_kv, f->size_);
  if (n_tensors > r.left() / 24) fail("{}: tensor count {} is absurd for a file of {} bytes", p, n_tensors, f->size_);

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str("a metadata key");
    const VType t = r.vtype(key);
    Value v = r.value(t, key, 0);
    if (!f->kv_index_.emplace(key, f->kv_.size()).second) fail("{}: duplicate metadata key '{}'", p, key);
    f->kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const Value* a = f->find_key("general.alignment")) {
    if (a->type != VType::U32) fail("{}: metadata key 'general.alignment' is {}, expected UINT32", p, vtype_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) fail("{}: general.alignment {} is not a power of two", p, a->u);
    f->alignment_ = a->u;
  }

  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t = r.tensor_info();
    if (!f->index_.emplace(t.name, f->tensors_.size()).second) fail("{}: duplicate tensor name '{}'", p, t.name);
    f->tensors_.push_back(std::move(t));
  }
  f->data_offset_ = (r.pos + f->alignment_ - 1) / f->alignment_ * f->alignment_;
  place_tensors(*f);
  return f;
}

File::~File() = default;

const Value* File::find_key(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& File::get(const std::string& key, const char* want) const {
  const Value* v = find_key(key);
  if (!v) fail("{}: metadata key '{}' is missing (expected {})", path_.string(), key, want);
  return *v;
}

namespace {
[[noreturn]] void wrong(const fs::path& p, const std::string& key, const Value& v, const char* want) {
  fail("{}: metadata key '{}' is {}{}{}, expected {}", p.string(), key, vtype_name(v.type),
       v.type == VType::ARRAY ? " of " : "", v.type == VType::ARRAY ? vtype_name(v.elem) : "", want);
}
// An integer value as int64 (nullopt when a UINT64 is beyond INT64_MAX).
std::optional<int64_t> as_int(const Value& v) {
  if (v.type == VType::U8 || v.type == VType::U16 || v.type == VType::U32 || v.type == VType::U64)
    return v.u > uint64_t(INT64_MAX) ? std::nullopt : std::optional<int64_t>(int64_t(v.u));
  return v.i;
}
}  // namespace

int64_t File::integer(const std::string& key) const {
  const Value& v = get(key, "an integer");
  if (!v.is_integer()) wrong(path_, key, v, "an integer");
  auto x = as_int(v);
  if (!x) fail("{}: metadata key '{}' = {} does not fit in a signed 64-bit integer", path_.string(), key, v.u);
  return *x;
}
int64_t File::integer_or(const std::string& key, int64_t d) const { return has(key) ? integer(key) : d; }

double File::number(const std::string& key) const {
  const Value& v = get(key, "a number");
  if (v.type == VType::F32 || v.type == VType::F64) return v.f;
  if (!v.is_integer()) wrong(path_, key, v, "a number");
  return double(integer(key));
}
double File::number_or(const std::string& key, double d) const { return has(key) ? number(key) : d; }

bool File::boolean(const std::string& key) const {
  const Value& v = get(key, "a BOOL");
  if (v.type != VType::BOOL) wrong(path_, key, v, "BOOL");
  return v.u != 0;
}
bool File::boolean_or(const std::string& key, bool d) const { return has(key) ? boolean(key) : d; }

std::string File::string(const std::string& key) const {
  const Value& v = get(key, "a STRING");
  if (v.type != VType::STRING) wrong(path_, key, v, "STRING");
  return v.s;
}
std::string File::string_or(const std::string& key, const std::string& d) const { return has(key) ? string(key) : d; }

std::vector<std::string> File::strings(const std::string& key) const {
  const Value& v = get(key, "an ARRAY of STRING");
  if (v.type != VType::ARRAY || v.elem != VType::STRING) wrong(path_, key, v, "ARRAY of STRING");
  std::vector<std::string> out;
  out.reserve(v.items.size());
  for (auto& x : v.items) out.push_back(x.s);
  return out;
}

std::vector<int64_t> File::integers(const std::string& key) const {
  const Value& v = get(key, "an ARRAY of integers");
  Value probe;
  probe.type = v.elem;
  if (v.type != VType::ARRAY || !probe.is_integer()) wrong(path_, key, v, "ARRAY of integers");
  std::vector<int64_t> out;
  for (auto& x : v.items) {
    auto i = as_int(x);
    if (!i) fail("{}: metadata key '{}': element {} does not fit in a signed 64-bit integer", path_.string(), key, x.u);
    out.push_back(*i);
  }
  return out;
}

std::vector<double> File::numbers(const std::string& key) const {
  const Value& v = get(key, "an ARRAY of numbers");
  Value probe;
  probe.type = v.elem;
  const bool flt = v.elem == VType::F32 || v.elem == VType::F64;
  if (v.type != VType::ARRAY || !(flt || probe.is_integer())) wrong(path_, key, v, "ARRAY of numbers");
  std::vector<double> out;
  for (auto& x : v.items) out.push_back(flt ? x.f : x.type == VType::U64 ? double(x.u) : double(*as_int(x)));
  return out;
}

const TensorInfo* File::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail("{}: no tensor named '{}'", path_.string(), name);
  return *t;
}

std::vector<float> File::to_f32(const TensorInfo& t) const {
  std::vector<float> out(size_t(t.numel()));
  const int64_t cols = t.cols(), rows = t.rows();
  const size_t rb = row_bytes(t.type, cols);
  for (int64_t r = 0; r < rows; ++r) dequantize_row(t.type, t.data + size_t(r) * rb, cols, out.data() + r * cols);
  return out;
}

}  // namespace llmopt::gguf
