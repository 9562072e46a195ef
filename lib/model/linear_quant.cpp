#include "lib/model/linear_quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <regex>

#include "formats/awq_pack.h"
#include "formats/quant_layout.h"
#include "lib/core/error.h"

namespace llmopt::model {

// ---- canonical form -----------------------------------------------------------------------------

backend::QuantMatrix QuantWeight::matrix() const {
  backend::QuantMatrix m;
  m.bits = bits, m.rows = rows, m.cols = cols, m.n_groups = n_groups();
  m.codes = codes.data(), m.groups = groups.data(), m.scales = scales.data(), m.zeros = zeros.data();
  m.mins = mins.empty() ? nullptr : mins.data();
  m.perm = perm.empty() ? nullptr : perm.data();
  m.int8_activations = int8_activations;
  return m;
}

std::vector<float> QuantWeight::dequantize() const {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  backend::dequant_rows(matrix(), 0, rows, w.data());
  return w;
}

QuantWeight QuantWeight::from_codes(std::string format, int bits, int64_t rows, int64_t cols, const uint8_t* codes,
                                    const int32_t* g_idx, int64_t n_groups, std::vector<float> scales,
                                    std::vector<uint8_t> zeros) {
  QuantWeight q;
  q.format = std::move(format);
  q.bits = bits, q.rows = rows, q.cols = cols;
  // stored order: input columns sorted by group (stable); groups[g] = first stored column of group g
  std::vector<int32_t> order(static_cast<size_t>(cols));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return g_idx[a] < g_idx[b]; });
  q.groups.assign(size_t(n_groups + 1), 0);
  for (int64_t c = 0; c < cols; ++c) q.groups[size_t(g_idx[c] + 1)]++;
  std::partial_sum(q.groups.begin(), q.groups.end(), q.groups.begin());
  bool identity = true;
  for (int64_t j = 0; j < cols; ++j) identity = identity && order[size_t(j)] == j;
  if (!identity) q.perm = order;
  const auto m = q.matrix();  // for row_bytes / storage_bits
  const int64_t rb = m.row_bytes();
  q.codes.assign(size_t(rows * rb), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      backend::put_code(q.codes.data() + r * rb, m.storage_bits(), j, codes[r * cols + order[size_t(j)]]);
  q.scales = std::move(scales);
  q.zeros = std::move(zeros);
  return q;
}

QuantWeight QuantWeight::from_gguf(const gguf::TensorInfo& t, int permuted_heads) {
  const gguf::BlockForm f = gguf::block_form(t.type);
  if (t.shape.size() != 2) fail("GGUF tensor '{}': a quantized linear must be 2-D", t.name);
  if (permuted_heads > 0 && t.rows() % (2 * permuted_heads) != 0)
    fail("GGUF tensor '{}': {} rows are not {} heads of even size", t.name, t.rows(), permuted_heads);
  QuantWeight q;
  q.format = std::string("gguf ") + gguf::type_name(t.type);
  q.bits = f.bits, q.rows = t.rows(), q.cols = t.cols();
  const int64_t G = q.cols / f.group, be = gguf::block_elems(t.type), per_block = be / f.group;
  for (int64_t g = 0; g <= G; ++g) q.groups.push_back(g * f.group);
  q.scales.resize(size_t(q.rows * G));
  q.zeros.assign(size_t(q.rows * G), uint8_t(f.zero));
  if (f.has_min) q.mins.resize(size_t(q.rows * G));
  const int sb = backend::QuantMatrix::storage_bits(f.bits);
  const int64_t rb = (q.cols * sb + 7) / 8;
  const size_t src_rb = gguf::row_bytes(t.type, q.cols);
  q.codes.assign(size_t(q.rows * rb), 0);
  uint8_t codes[256];
  float mins[16];
  for (int64_t r = 0; r < q.rows; ++r) {
    const int64_t src = permuted_heads > 0 ? gguf::rope_gguf_row(r, q.rows, permuted_heads) : r;
    const uint8_t* blk = t.data + size_t(src) * src_rb;
    uint8_t* dst = q.codes.data() + r * rb;
    for (int64_t b = 0; b < q.cols / be; ++b, blk += gguf::block_bytes(t.type)) {
      float* sc = q.scales.data() + r * G + b * per_block;
      gguf::decode_block(t.type, blk, codes, sc, f.has_min ? q.mins.data() + r * G + b * per_block : mins);
      for (int64_t j = 0; j < be; ++j) backend::put_code(dst, sb, b * be + j, codes[j]);
    }
  }
  return q;
}

namespace {

using nlohmann::json;

int cfg_int(const json& j, const char* key, int fallback) {
  return j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : fallback;
}

// j[key], or null when j is not an object holding key (const operator[] on a missing key is undefined)
const json& member(const json& j, const char* key) {
  static const json none;
  return j.is_object() && j.contains(key) ? j[key] : none;
}

// A tensor that must exist, with `dims` dimensions.
st::TensorView need(const st::TensorSet& ts, const std::string& name, size_t dims) {
  if (!ts.has(name)) fail("tensor {} is missing (the quantized layout needs it)", name);
  st::TensorView v = ts.get(name);
  if (v.shape().size() != dims) fail("{}: expected {} dimensions, got {}", name, dims, v.shape().size());
  return v;
}

void need_int32(const st::TensorView& v) {
  if (v.dtype() != DType::I32) fail("{}: dtype {}, expected I32", v.info->name, dtype_name(v.dtype()));
}

void check_bits(int bits, const std::string& what) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    fail("{}: {}-bit weights are not supported (2, 3, 4, 8)", what, bits);
}

// Group of each input column for consecutive groups of `gs` columns.
std::vector<int32_t> linear_groups(int64_t cols, int64_t gs) {
  std::vector<int32_t> g(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) g[size_t(c)] = int32_t(c / gs);
  return g;
}

// ---- GPTQ ----
QuantWeight load_gptq(const st::TensorSet& ts, const json& qc, const std::string& p) {
  const int bits = cfg_int(qc, "bits", 4);
  check_bits(bits, p);
  const auto qw = need(ts, p + ".qweight", 2), qz = need(ts, p + ".qzeros", 2), sc = need(ts, p + ".scales", 2);
  need_int32(qw), need_int32(qz);
  const int64_t rows = qw.shape()[1], cols = qw.shape()[0] * 32 / bits, ng = sc.shape()[0];
  if (rows == 0 || cols == 0 || ng == 0) fail("{}: empty qweight or scales", p);
  if (qw.shape()[0] * 32 % bits) fail("{}.qweight: {} rows do not hold whole {}-bit columns", p, qw.shape()[0], bits);
  if (sc.shape()[1] != rows) fail("{}.scales: shape [{}, {}], expected [n_groups, {}]", p, sc.shape()[0], sc.shape()[1], rows);
  const int64_t nz = (rows * bits + 31) / 32;
  if (qz.shape()[0] != ng || qz.shape()[1] < nz)
    fail("{}.qzeros: shape [{}, {}], expected [{}, {}]", p, qz.shape()[0], qz.shape()[1], ng, nz);
  std::vector<int32_t> g_idx;
  if (ts.has(p + ".g_idx")) {
    const auto gi = need(ts, p + ".g_idx", 1);
    need_int32(gi);
    if (gi.numel() != cols) fail("{}.g_idx: {} entries, expected {}", p, gi.numel(), cols);
    auto s = gi.as<int32_t>();
    g_idx.assign(s.begin(), s.end());
    for (int64_t c = 0; c < cols; ++c)
      if (g_idx[size_t(c)] < 0 || g_idx[size_t(c)] >= ng) fail("{}.g_idx[{}] = {} outside [0, {})", p, c, g_idx[size_t(c)], ng);
  } else {
    const int gs = cfg_int(qc, "group_size", -1);
    g_idx = linear_groups(cols, gs > 0 ? gs : cols);
    if ((cols + (gs > 0 ? gs : cols) - 1) / (gs > 0 ? gs : cols) != ng) fail("{}.scales: {} groups, group_size {} implies otherwise", p, ng, gs);
  }
  // v1 ("gptq") stores zero − 1; v2 stores the zero itself
  const uint32_t add = qc.value("checkpoint_format", std::string("gptq")) == "gptq_v2" ? 0 : 1;
  const uint32_t mask = (1u << bits) - 1;
  const auto* qwd = reinterpret_cast<const uint32_t*>(qw.data);
  const auto* qzd = reinterpret_cast<const uint32_t*>(qz.data);
  const int64_t nw = qw.shape()[0];
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  std::vector<uint32_t> col(static_cast<size_t>(nw));
  for (int64_t o = 0; o < rows; ++o) {  // output column o is one word stream over the input index
    for (int64_t k = 0; k < nw; ++k) col[size_t(k)] = qwd[k * rows + o];
    for (int64_t i = 0; i < cols; ++i) codes[size_t(o * cols + i)] = uint8_t(get_bits(col.data(), i, bits));
  }
  const std::vector<float> s = sc.to_f32();
  std::vector<float> scales(static_cast<size_t>(rows * ng));
  std::vector<uint8_t> zeros(static_cast<size_t>(rows * ng));
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t o = 0; o < rows; ++o) {
      scales[size_t(o * ng + g)] = s[size_t(g * rows + o)];
      zeros[size_t(o * ng + g)] = uint8_t((get_bits(qzd + g * qz.shape()[1], o, bits) + add) & mask);
    }
  return QuantWeight::from_codes("gptq", bits, rows, cols, codes.data(), g_idx.data(), ng, std::move(scales),
                                 std::move(zeros));
}

// ---- AWQ (GEMM) ----
QuantWeight load_awq(const st::TensorSet& ts, const json& qc, const std::string& p) {
  const int bits = cfg_int(qc, "bits", cfg_int(qc, "w_bit", 4));
  if (bits != 4) fail("{}: AWQ with {} bits is not supported (4)", p, bits);
  if (qc.value("version", std::string("gemm")) != "gemm" && qc.value("version", std::string("gemm")) != "GEMM")
    fail("{}: AWQ version '{}' is not supported (gemm)", p, qc.value("version", std::string()));
  const auto qw = need(ts, p + ".qweight", 2), qz = need(ts, p + ".qzeros", 2), sc = need(ts, p + ".scales", 2);
  need_int32(qw), need_int32(qz);
  const int64_t cols = qw.shape()[0], rows = qw.shape()[1] * 8, ng = sc.shape()[0];
  if (rows == 0 || cols == 0 || ng == 0) fail("{}: empty qweight or scales", p);
  if (sc.shape()[1] != rows) fail("{}.scales: shape [{}, {}], expected [n_groups, {}]", p, sc.shape()[0], sc.shape()[1], rows);
  if (qz.shape()[0] != ng || qz.shape()[1] != rows / 8)
    fail("{}.qzeros: shape [{}, {}], expected [{}, {}]", p, qz.shape()[0], qz.shape()[1], ng, rows / 8);
  if (cols % ng) fail("{}: {} input features do not split into {} groups", p, cols, ng);
  const int64_t gs = cols / ng;
  const auto* qwd = reinterpret_cast<const uint32_t*>(qw.data);
  const auto* qzd = reinterpret_cast<const uint32_t*>(qz.data);
  // nibble j of word c holds output column 8c + kOrder[j]
  auto nib = [&](const uint32_t* words, int64_t r, int64_t o) {
    const int k = int(o % 8);
    int j = 0;
    while (awq::kOrder[j] != k) ++j;
    return uint8_t((words[r * (rows / 8) + o / 8] >> (4 * j)) & 15u);
  };
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t o = 0; o < rows; ++o) codes[size_t(o * cols + i)] = nib(qwd, i, o);
  const std::vector<float> s = sc.to_f32();
  std::vector<float> scales(static_cast<size_t>(rows * ng));
  std::vector<uint8_t> zeros(static_cast<size_t>(rows * ng));
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t o = 0; o < rows; ++o) {
      scales[size_t(o * ng + g)] = s[size_t(g * rows + o)];
      zeros[size_t(o * ng + g)] = nib(qzd, g, o);
    }
  const auto g_idx = linear_groups(cols, gs);
  return QuantWeight::from_codes("awq", 4, rows, cols, codes.data(), g_idx.data(), ng, std::move(scales),
                                 std::move(zeros));
}

// ---- compressed-tensors ----
// The config group whose targets name this linear ("Linear", "re:<regex>" matched from the start as Python's
// re.match, or the exact module name); null when none does.
const json* ct_scheme(const json& qc, const std::string& p) {
  if (!qc.contains("config_groups") || !qc["config_groups"].is_object()) return nullptr;
  for (const auto& [name, grp] : qc["config_groups"].items()) {
    if (!grp.contains("targets")) continue;
    for (const auto& t : grp["targets"]) {
      const std::string s = t.is_string() ? t.get<std::string>() : "";
      if (s == "Linear" || s == p) return &grp;
      if (s.rfind("re:", 0) != 0) continue;
      std::regex re;
      try {
        re.assign(s.substr(3));
      } catch (const std::regex_error& e) {
        fail("quantization_config: config_groups: {}: target \"{}\" is not a valid regex ({})", name, s, e.what());
      }
      if (std::regex_search(p, re, std::regex_constants::match_continuous)) return &grp;
    }
  }
  return nullptr;
}

QuantWeight load_ct_packed(const st::TensorSet& ts, const json* scheme, const std::string& p) {
  if (!scheme) fail("{}: no compressed-tensors config group targets this linear", p);
  const json& wa = member(*scheme, "weights");
  const int bits = cfg_int(wa, "num_bits", 4);
  check_bits(bits, p);
  const auto wp = need(ts, p + ".weight_packed", 2), shp = need(ts, p + ".weight_shape", 1);
  need_int32(wp);
  if (shp.numel() != 2) fail("{}.weight_shape: {} entries, expected 2", p, shp.numel());
  const std::vector<float> shape_f = shp.to_f32();  // small ints, exact
  for (float d : shape_f)  // (also rejects NaN, whose conversion to an integer is undefined)
    if (!(d >= 1 && d <= float(INT32_MAX))) fail("{}.weight_shape: {} is not a valid dimension", p, d);
  const int64_t rows = int64_t(shape_f[0]), cols = int64_t(shape_f[1]);
  const int64_t nw = (cols * bits + 31) / 32;
  if (wp.shape()[0] != rows || wp.shape()[1] != nw)
    fail("{}.weight_packed: shape [{}, {}], expected [{}, {}] for {}-bit {}x{}", p, wp.shape()[0], wp.shape()[1], rows,
         nw, bits, rows, cols);
  const auto sc = ts.get(p + ".weight_scale");
  if (sc.numel() % rows) fail("{}.weight_scale: {} entries for {} rows", p, sc.numel(), rows);
  const int64_t ng = sc.numel() / rows;
  if (ng == 0 || cols % ng) fail("{}.weight_scale: {} groups do not divide {} input features", p, ng, cols);
  const int64_t gs = cols / ng;
  std::vector<uint8_t> zeros(static_cast<size_t>(rows * ng), uint8_t(1 << (bits - 1)));  // symmetric: zero = 2^(bits-1)
  if (ts.has(p + ".weight_zero_point")) {  // packed along the output dim: word (w, g) at w * ng + g
    const auto zp = need(ts, p + ".weight_zero_point", 2);
    need_int32(zp);
    const int64_t nzw = (rows * bits + 31) / 32;
    if (zp.shape()[0] != nzw || zp.shape()[1] != ng)
      fail("{}.weight_zero_point: shape [{}, {}], expected [{}, {}]", p, zp.shape()[0], zp.shape()[1], nzw, ng);
    const auto* z = reinterpret_cast<const uint32_t*>(zp.data);
    std::vector<uint32_t> col(static_cast<size_t>(nzw));
    for (int64_t g = 0; g < ng; ++g) {
      for (int64_t w = 0; w < nzw; ++w) col[size_t(w)] = z[w * ng + g];
      for (int64_t r = 0; r < rows; ++r) zeros[size_t(r * ng + g)] = uint8_t(get_bits(col.data(), r, bits));
    }
  }
  const auto* words = reinterpret_cast<const uint32_t*>(wp.data);
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) codes[size_t(r * cols + c)] = uint8_t(get_bits(words + r * nw, c, bits));
  const auto g_idx = linear_groups(cols, gs);
  return QuantWeight::from_codes("compressed-tensors", bits, rows, cols, codes.data(), g_idx.data(), ng, sc.to_f32(),
                                 std::move(zeros));
}

QuantWeight load_ct_int8(const st::TensorSet& ts, const json* scheme, const std::string& p) {
  const auto w = need(ts, p + ".weight", 2);
  const int64_t rows = w.shape()[0], cols = w.shape()[1];
  if (rows == 0 || cols == 0) fail("{}.weight: empty shape [{}, {}]", p, rows, cols);
  const auto sc = ts.get(p + ".weight_scale");
  if (sc.numel() % rows) fail("{}.weight_scale: {} entries for {} rows", p, sc.numel(), rows);
  const int64_t ng = sc.numel() / rows;
  if (ng == 0 || cols % ng) fail("{}.weight_scale: {} groups do not divide {} input features", p, ng, cols);
  std::vector<uint8_t> zeros(static_cast<size_t>(rows * ng), 128);  // code = int8 value + 128
  if (ts.has(p + ".weight_zero_point")) {
    const auto zp = ts.get(p + ".weight_zero_point").to_f32();
    if (int64_t(zp.size()) != rows * ng) fail("{}.weight_zero_point: {} entries, expected {}", p, zp.size(), rows * ng);
    for (size_t i = 0; i < zp.size(); ++i) {
      if (zp[i] < -128 || zp[i] > 127) fail("{}.weight_zero_point: {} outside the int8 range", p, zp[i]);
      zeros[i] = uint8_t(int(zp[i]) + 128);
    }
  }
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  const int8_t* q = reinterpret_cast<const int8_t*>(w.data);
  for (int64_t i = 0; i < rows * cols; ++i) codes[size_t(i)] = uint8_t(int(q[i]) + 128);
  const auto g_idx = linear_groups(cols, cols / ng);
  QuantWeight qw = QuantWeight::from_codes("compressed-tensors", 8, rows, cols, codes.data(), g_idx.data(), ng,
                                           sc.to_f32(), std::move(zeros));
  // W8A8: the scheme quantizes input activations to 8-bit ints per token at run time
  const json ia = scheme && scheme->contains("input_activations") ? (*scheme)["input_activations"] : json();
  if (ia.is_object()) {
    if (cfg_int(ia, "num_bits", 8) != 8 || ia.value("type", std::string("int")) != "int")
      fail("{}: input activations of {} bits, type {} are not supported (8-bit int)", p, cfg_int(ia, "num_bits", 8),
           ia.value("type", std::string("?")));
    if (!ia.value("dynamic", false) || !ia.value("symmetric", true))
      fail("{}: static or asymmetric activation quantization is not supported (dynamic symmetric per token)", p);
    qw.int8_activations = true;
  }
  return qw;
}

std::string method_of(const json& qc) { return qc.is_object() ? qc.value("quant_method", std::string()) : ""; }

}  // namespace

std::optional<Linear> load_quantized_linear(const st::TensorSet& ts, const json& qc, const std::string& p) {
  const std::string method = method_of(qc);
  std::optional<QuantWeight> q;
  if (ts.has(p + ".qweight")) {
    if (method == "gptq") q = load_gptq(ts, qc, p);
    else if (method == "awq") q = load_awq(ts, qc, p);
    else fail("{}.qweight: quant_method '{}' is not supported for a qweight layout (gptq, awq)", p, method);
  } else if (ts.has(p + ".weight_packed")) {
    q = load_ct_packed(ts, ct_scheme(qc, p), p);
  } else if (ts.has(p + ".weight") && ts.info(p + ".weight").dtype == DType::I8) {
    if (!ts.has(p + ".weight_scale")) fail("{}.weight is int8 but {}.weight_scale is missing", p, p);
    q = load_ct_int8(ts, ct_scheme(qc, p), p);
  } else {
    return std::nullopt;  // a float .weight: not quantized
  }
  Linear l;
  l.name = p;
  l.kind = q->int8_activations ? Linear::Kind::W8A8 : Linear::Kind::Grouped;
  l.out = q->rows;
  l.in = q->cols;
  if (ts.has(p + ".bias")) {
    const auto b = ts.get(p + ".bias");
    if (b.numel() != l.out) fail("{}.bias: has {} elements, expected {}", p, b.numel(), l.out);
    l.bias = b.to_f32();
  }
  l.quant = std::make_shared<const QuantWeight>(std::move(*q));
  return l;
}

LinearStorage describe_linear(const st::TensorSet& ts, const json& qc, const std::string& p) {
  LinearStorage s;
  s.name = p;
  for (const char* suf : {"weight", "qweight", "qzeros", "scales", "g_idx", "weight_packed", "weight_scale",
                          "weight_zero_point", "weight_shape"})
    if (ts.has(p + "." + suf)) s.bytes += int64_t(ts.info(p + "." + suf).nbytes());
  const std::string method = method_of(qc);
  auto g_text = [](int64_t gs, int64_t cols) { return gs <= 0 || gs >= cols ? std::string("per-channel") : fmt::format("g{}", gs); };
  if (ts.has(p + ".qweight")) {
    const auto& qw = ts.info(p + ".qweight");
    const auto& sc = ts.info(p + ".scales");
    const int bits = method == "awq" ? 4 : cfg_int(qc, "bits", 4);
    check_bits(bits, p);
    if (qw.shape.size() != 2 || sc.shape.size() != 2 || sc.shape[0] == 0)
      fail("{}: qweight and scales must be 2-D and non-empty", p);
    s.rows = sc.shape[1];
    s.cols = method == "awq" ? qw.shape[0] : qw.shape[0] * 32 / bits;
    s.format = fmt::format("{} int{} {}", method, bits, g_text((s.cols + sc.shape[0] - 1) / sc.shape[0], s.cols));
    if (method == "gptq" && qc.value("desc_act", false)) s.format += " act-order";
  } else if (ts.has(p + ".weight_packed")) {
    const json* scheme = ct_scheme(qc, p);
    const int bits = scheme ? cfg_int(member(*scheme, "weights"), "num_bits", 4) : 4;
    const auto& wp = ts.info(p + ".weight_packed");
    const auto shp = ts.get(p + ".weight_shape").to_f32();
    s.rows = wp.shape.empty() ? 0 : wp.shape[0];
    s.cols = shp.size() == 2 && shp[1] >= 0 && shp[1] <= float(INT32_MAX) ? int64_t(shp[1]) : 0;
    const int64_t ng = std::max<int64_t>(1, ts.info(p + ".weight_scale").numel() / std::max<int64_t>(1, s.rows));
    s.format = fmt::format("compressed-tensors int{} {} {}", bits, g_text(s.cols / ng, s.cols),
                           ts.has(p + ".weight_zero_point") ? "asym" : "sym");
  } else if (ts.has(p + ".weight")) {
    const auto& w = ts.info(p + ".weight");
    s.rows = w.shape.size() == 2 ? w.shape[0] : 0;
    s.cols = w.shape.size() == 2 ? w.shape[1] : 0;
    if (w.dtype == DType::I8) {
      const json* scheme = ct_scheme(qc, p);
      const bool a8 = scheme && scheme->contains("input_activations") && (*scheme)["input_activations"].is_object();
      s.format = a8 ? "w8a8 int8" : "compressed-tensors int8";
    } else {
      s.format = dtype_name(w.dtype);
    }
  }
  return s;
}

}  // namespace llmopt::model
