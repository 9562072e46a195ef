// formats/safetensors against files made and read by the Python `safetensors` package
// (scripts/golden/safetensors_golden.py -> testdata/safetensors/).
#include "formats/safetensors.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;
using llmopt::test::temp_dir;
using llmopt::test::testdata_dir;

namespace {
fs::path st_dir() { return testdata_dir() / "safetensors"; }
json manifest() { return json::parse(read_file(st_dir() / "py_manifest.json")); }

std::string hex(const std::byte* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += d[uint8_t(p[i]) >> 4], s += d[uint8_t(p[i]) & 15];
  return s;
}

uint64_t fnv1a64(std::string_view b) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : b) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h;
}

// Checks one tensor view against its manifest entry: dtype, shape, bytes and float32 values.
void check_tensor(const st::TensorView& v, const json& want) {
  INFO("tensor " << v.info->name);
  CHECK(std::string(dtype_name(v.dtype())) == want["dtype"].get<std::string>());
  CHECK(v.shape() == want["shape"].get<std::vector<int64_t>>());
  CHECK(hex(v.data, v.nbytes()) == want["hex"].get<std::string>());
  auto f = v.to_f32();
  auto bits = want["f32_bits"].get<std::vector<uint32_t>>();
  REQUIRE(f.size() == bits.size());
  for (size_t i = 0; i < f.size(); ++i) {
    float w;
    std::memcpy(&w, &bits[i], 4);
    if (std::isnan(w)) CHECK(std::isnan(f[i]));
    else CHECK(std::bit_cast<uint32_t>(f[i]) == bits[i]);
  }
}

// Every tensor of the Python-made all-dtypes file, in the order given, with bytes from the file.
void rewrite(const std::shared_ptr<const st::File>& src, const fs::path& out, std::vector<std::string> order,
             const std::map<std::string, std::string>& meta, bool reverse_writes) {
  std::vector<st::TensorInfo> specs;
  for (const auto& n : order) specs.push_back(*src->find(n));
  st::Writer w(out, specs, meta);
  if (reverse_writes) std::reverse(order.begin(), order.end());  // writes may come in any order
  for (const auto& n : order) {
    auto v = src->view(*src->find(n));
    w.write(n, v.data, v.nbytes());
  }
  w.finish();
}

void write_raw(const fs::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
std::string with_len(uint64_t n, std::string_view rest) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s + std::string(rest);
}
// A file whose header is `header` (length taken from it) followed by `data_bytes` bytes.
std::string st_bytes(std::string_view header, size_t data_bytes) {
  return with_len(header.size(), header) + std::string(data_bytes, '\x11');
}

// Opens bytes as a file and returns the error message (empty if it opened).
std::string open_error(std::string_view bytes, fs::path* where = nullptr) {
  static fs::path dir = temp_dir("st-bad");
  static int k = 0;
  fs::path p = dir / ("bad" + std::to_string(k++) + ".safetensors");
  if (where) *where = p;
  write_raw(p, bytes);
  try {
    st::File::open(p);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(p.string()) != std::string::npos);  // every message names the file
    return e.what();
  }
  return "";
}
const char* kU8x2 = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
}  // namespace

TEST_CASE("reads the Python-made file with every dtype, 0-d and empty tensors, metadata") {
  auto m = manifest()["files"]["py_all_dtypes.safetensors"];
  auto f = st::File::open(st_dir() / "py_all_dtypes.safetensors");
  CHECK(f->metadata() == m["metadata"].get<std::map<std::string, std::string>>());
  std::vector<std::string> order;
  for (const auto& t : f->tensors()) order.push_back(t.name);
  CHECK(order == m["order"].get<std::vector<std::string>>());  // data-offset order
  REQUIRE(f->tensors().size() == m["tensors"].size());
  std::set<std::string> dtypes;
  for (const auto& t : f->tensors()) {
    const json& want = m["tensors"][t.name];
    CHECK(t.begin == want["data_offsets"][0].get<uint64_t>());
    CHECK(t.end == want["data_offsets"][1].get<uint64_t>());
    check_tensor(f->view(t), want);
    dtypes.insert(std::string(dtype_name(t.dtype)));
  }
  CHECK(dtypes.size() == 12);  // every dtype
  CHECK(f->find("scalar.f32")->shape.empty());
  CHECK(f->find("scalar.f32")->numel() == 1);
  CHECK(f->view(*f->find("scalar.f32")).as<float>()[0] == 3.5f);
  CHECK(f->find("empty.bf16")->numel() == 0);
  CHECK(f->view(*f->find("empty.bf16")).to_f32().empty());
  CHECK(f->find("nope") == nullptr);

  auto i64 = f->view(*f->find("i64.values")).as<int64_t>();
  REQUIRE(i64.size() == 6);
  CHECK(i64[0] == INT64_MIN);
  CHECK(i64[5] == 12345678901234);
  CHECK(f->view(*f->find("bf16.values")).as<uint16_t>()[0] == 0x3f80);
  // A typed view of the wrong element size names the tensor and both sizes.
  CHECK_THROWS_WITH_AS(f->view(*f->find("f16.values")).as<float>(),
                       doctest::Contains("tensor 'f16.values' has dtype F16 (2 bytes per element)"), Error);
  CHECK_THROWS_AS(st::check_view_elem_size(*f->find("i8.values"), 2), Error);
  CHECK_NOTHROW(st::check_view_elem_size(*f->find("i8.values"), 1));
}

TEST_CASE("reads the Python-made sharded checkpoint through its index") {
  auto m = manifest();
  auto ts = st::TensorSet::open_dir(st_dir() / "py_sharded");
  CHECK(ts.files().size() == 2);
  auto wm = m["sharded_weight_map"];
  std::vector<std::string> want_names;
  for (const auto& [n, file] : wm.items()) want_names.push_back(n);
  std::sort(want_names.begin(), want_names.end());
  CHECK(ts.names() == want_names);
  for (const auto& [n, file] : wm.items()) {
    REQUIRE(ts.has(n));
    check_tensor(ts.get(n), m["files"]["py_sharded/" + file.get<std::string>()]["tensors"][n]);
    CHECK(ts.info(n).name == n);
  }
  CHECK_FALSE(ts.has("lm_head.weight"));
  CHECK_THROWS_WITH_AS(ts.get("lm_head.weight"), doctest::Contains("tensor 'lm_head.weight' not found in"), Error);

  // A single-file directory and open_file give the same tensors.
  fs::path d = temp_dir("st-single");
  fs::copy_file(st_dir() / "py_all_dtypes.safetensors", d / "model.safetensors");
  auto a = st::TensorSet::open_dir(d);
  auto b = st::TensorSet::open_file(st_dir() / "py_all_dtypes.safetensors");
  CHECK(a.names() == b.names());
  CHECK(a.names().size() == 17);
  CHECK(hex(a.get("u8.all").data, 256) == hex(b.get("u8.all").data, 256));
}

TEST_CASE("Writer reproduces the Python writer's file byte for byte") {
  const fs::path py = st_dir() / "py_all_dtypes.safetensors";
  auto src = st::File::open(py);
  std::vector<std::string> order;
  for (const auto& t : src->tensors()) order.push_back(t.name);
  fs::path out = temp_dir("st-same") / "same.safetensors";
  rewrite(src, out, order, src->metadata(), true);
  std::string got = read_file(out), want = read_file(py);
  CHECK(got.size() == want.size());
  CHECK(got == want);  // same header (order, compact JSON, space padding to 8) and data
  uint64_t n;
  std::memcpy(&n, got.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(got[8 + n - 1] == ' ');
}

TEST_CASE("Writer output matches the committed file that the Python package verified bit-exactly") {
  // Reverse name order (not the Python writer's), several metadata keys, writes in reverse order.
  auto src = st::File::open(st_dir() / "py_all_dtypes.safetensors");
  std::vector<std::string> order;
  for (const auto& t : src->tensors()) order.push_back(t.name);
  std::sort(order.rbegin(), order.rend());
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"producer", "llmopt"}, {"note", "quotes \" and \\ and unicode \xc3\xa9"}};
  const fs::path committed = st_dir() / "ours_all_dtypes.safetensors";
  fs::path out = temp_dir("st-ours") / "ours.safetensors";
  rewrite(src, out, order, meta, true);
  if (std::getenv("LLMOPT_WRITE_TESTDATA")) {
    fs::copy_file(out, committed, fs::copy_options::overwrite_existing);
    MESSAGE("wrote " << committed << "; now run scripts/golden/safetensors_golden.py verify");
  }
  const std::string got = read_file(out);
  CHECK(got == read_file(committed));  // a writer change fails here

  // The committed file is the one the Python package read back; every tensor bit-exact.
  auto v = json::parse(read_file(st_dir() / "ours_verify.json"));
  CHECK(v["all_bit_exact"].get<bool>());
  CHECK(v["same_tensor_names"].get<bool>());
  CHECK(v["tensors"].size() == src->tensors().size());
  CHECK(v["file_size"].get<uint64_t>() == got.size());
  CHECK(v["file_fnv1a64"].get<std::string>() == std::to_string(fnv1a64(got)));
  CHECK(v["metadata"].get<std::map<std::string, std::string>>() == meta);

  // And our reader agrees.
  auto f = st::File::open(out);
  CHECK(f->metadata() == meta);
  CHECK(f->tensors().front().name == "scalar.i64");  // 8-byte dtypes first, then declared (reverse) order
  uint64_t n;
  std::memcpy(&n, got.data(), 8);
  for (const auto& t : f->tensors()) CHECK((8 + n + t.begin) % dtype_size(t.dtype) == 0);  // aligned
  auto m = manifest()["files"]["py_all_dtypes.safetensors"]["tensors"];
  for (const auto& t : f->tensors()) check_tensor(f->view(t), m[t.name]);
}

TEST_CASE("Writer is atomic and checks what it is given") {
  fs::path d = temp_dir("st-writer");
  const fs::path p = d / "w.safetensors";
  std::vector<st::TensorInfo> specs = {{"a", DType::F32, {2, 2}}, {"b", DType::I8, {3}}, {"e", DType::F16, {0}}};
  const float a[4] = {1, 2, 3, 4};
  const int8_t b[3] = {-1, 0, 1};
  auto only_final = [&] {  // no temporary siblings left behind
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(d)) names.push_back(e.path().filename().string());
    return names;
  };
  {
    st::Writer w(p, specs);
    w.write("a", a, sizeof a);
    CHECK(only_final().size() == 1);  // the temporary
    CHECK_FALSE(fs::exists(p));
  }  // destroyed unfinished
  CHECK(only_final().empty());

  {
    st::Writer w(p, specs);
    w.write("a", a, sizeof a);
    CHECK_THROWS_WITH_AS(w.write("a", a, sizeof a), doctest::Contains("'a'"), Error);
    CHECK_THROWS_WITH_AS(w.write("zz", a, 4), doctest::Contains("not declared"), Error);
    CHECK_THROWS_WITH_AS(w.write("b", b, 2), doctest::Contains("got 2 bytes, but I8 x shape [3] needs 3"), Error);
    CHECK_THROWS_WITH_AS(w.finish(), doctest::Contains("2 of 3 tensors were never written, e.g. 'e'"), Error);
    CHECK_FALSE(fs::exists(p));
  }
  CHECK(only_final().empty());

  {
    st::Writer w(p, specs, {{"k", "v"}});
    w.write("e", nullptr, 0);
    w.write("b", b, 3);
    w.write("a", a, sizeof a);
    w.finish();
    CHECK_THROWS_AS(w.write("a", a, sizeof a), Error);
  }
  CHECK(only_final() == std::vector<std::string>{"w.safetensors"});
  auto f = st::File::open(p);
  CHECK(f->metadata().at("k") == "v");
  auto av = f->view(*f->find("a")).as<float>();
  CHECK(std::vector<float>(av.begin(), av.end()) == std::vector<float>{1, 2, 3, 4});
  CHECK(f->find("b")->begin == 16);

  // An unfinished rewrite leaves the previous file as it was.
  const std::string before = read_file(p);
  { st::Writer w(p, specs); }
  CHECK(read_file(p) == before);

  std::vector<st::TensorInfo> dup = {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}};
  CHECK_THROWS_WITH_AS(st::Writer(d / "x.safetensors", dup), doctest::Contains("declared twice"), Error);
  std::vector<st::TensorInfo> neg = {{"a", DType::F32, {-1}}};
  CHECK_THROWS_WITH_AS(st::Writer(d / "x.safetensors", neg), doctest::Contains("negative shape"), Error);
  CHECK(only_final() == std::vector<std::string>{"w.safetensors"});
}

TEST_CASE("ShardedWriter splits like transformers and TensorSet reads it back") {
  std::vector<st::TensorInfo> specs;
  for (int i = 0; i < 5; ++i) specs.push_back({"layer." + std::to_string(i), DType::F32, {4, 4}});  // 64 B
  specs.push_back({"big", DType::U8, {300}});
  fs::path d = temp_dir("st-sharded");
  {
    st::ShardedWriter w(d, specs, 150, {{"format", "pt"}});
    CHECK(w.shard_names() == std::vector<std::string>{"model-00001-of-00004.safetensors",
                                                      "model-00002-of-00004.safetensors",
                                                      "model-00003-of-00004.safetensors",
                                                      "model-00004-of-00004.safetensors"});
    std::vector<float> x(16);
    for (int i = 4; i >= 0; --i) {
      std::fill(x.begin(), x.end(), float(i));
      w.write("layer." + std::to_string(i), x.data(), 64);
    }
    std::vector<uint8_t> big(300, 7);
    w.write("big", big.data(), big.size());
    w.finish();
  }
  auto idx = json::parse(read_file(d / "model.safetensors.index.json"));
  CHECK(idx["metadata"]["total_size"] == 5 * 64 + 300);
  CHECK(idx["weight_map"]["layer.0"] == "model-00001-of-00004.safetensors");
  CHECK(idx["weight_map"]["layer.2"] == "model-00002-of-00004.safetensors");
  CHECK(idx["weight_map"]["big"] == "model-00004-of-00004.safetensors");  // bigger than the limit: alone
  auto ts = st::TensorSet::open_dir(d);
  CHECK(ts.names().size() == 6);
  CHECK(ts.get("layer.3").as<float>()[15] == 3.0f);
  CHECK(ts.get("big").as<uint8_t>()[299] == 7);
  CHECK(ts.files()[0]->metadata().at("format") == "pt");

  fs::path d1 = temp_dir("st-one-shard");
  {
    st::ShardedWriter w(d1, {{"t", DType::I32, {2}}}, 1 << 20);
    const int32_t v[2] = {5, 6};
    w.write("t", v, 8);
    w.finish();
  }
  CHECK(fs::exists(d1 / "model.safetensors"));
  CHECK_FALSE(fs::exists(d1 / "model.safetensors.index.json"));
  CHECK(st::TensorSet::open_dir(d1).get("t").as<int32_t>()[1] == 6);

  fs::path d2 = temp_dir("st-sharded-unfinished");
  { st::ShardedWriter w(d2, specs, 150); }
  CHECK(fs::is_empty(d2));
}

// ---- validation: one case per malformed file, each message names the file and the problem

TEST_CASE("rejects a truncated file") {
  CHECK(open_error("1234").find("truncated safetensors file: 4 bytes") != std::string::npos);
  CHECK(open_error("").find("truncated") != std::string::npos);
}
TEST_CASE("rejects a header length beyond the file") {
  CHECK(open_error(with_len(100, "{}")).find("header length 100 runs beyond the end of the file (10 bytes)") !=
        std::string::npos);
}
TEST_CASE("rejects an absurdly large header length") {
  CHECK(open_error(with_len(200'000'000, "{}")).find("header length 200000000 is absurdly large") !=
        std::string::npos);
}
TEST_CASE("rejects malformed JSON") {
  CHECK(open_error(st_bytes(R"({"a":)", 0)).find("malformed JSON header") != std::string::npos);
  CHECK(open_error(st_bytes("{}\xff", 0)).find("malformed JSON header") != std::string::npos);
}
TEST_CASE("rejects a header that is not an object") {
  CHECK(open_error(st_bytes("[1,2]", 0)).find("header is not a JSON object but array") != std::string::npos);
}
TEST_CASE("rejects non-string metadata") {
  auto e = open_error(st_bytes(R"({"__metadata__":{"k":1}})", 0));
  CHECK(e.find("\"__metadata__\" value of 'k' is not a string but number") != std::string::npos);
  CHECK(open_error(st_bytes(R"({"__metadata__":"x"})", 0)).find("\"__metadata__\" is not a JSON object") !=
        std::string::npos);
}
TEST_CASE("rejects an unknown dtype") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"X9","shape":[2],"data_offsets":[0,2]}})", 2));
  CHECK(e.find("tensor 'a': unknown or unsupported dtype 'X9'") != std::string::npos);
}
TEST_CASE("rejects dtype x shape that does not match the byte length") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
  CHECK(e.find("tensor 'a': F32 x shape [3] needs 12 bytes but data_offsets [0, 8] hold 8") != std::string::npos);
  e = open_error(st_bytes(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8));
  CHECK(e.find("needs too many bytes") != std::string::npos);
}
TEST_CASE("rejects offsets outside the data section") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 3));
  CHECK(e.find("tensor 'a': data_offsets [0, 4] lie outside the data section (3 bytes)") != std::string::npos);
  e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}})", 2));
  CHECK(e.find("end before they begin") != std::string::npos);
}
TEST_CASE("rejects overlapping tensors") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", 3));
  CHECK(e.find("tensor 'b' at [1, 3] overlaps tensor 'a' at [0, 2]") != std::string::npos);
}
TEST_CASE("rejects gaps and trailing bytes, as the reference reader does") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})", 5));
  CHECK(e.find("tensor 'b' starts at 3 leaving a gap of 1 unused bytes") != std::string::npos);
  e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", 3));
  CHECK(e.find("gap") != std::string::npos);
  e = open_error(st_bytes(kU8x2, 3));
  CHECK(e.find("the data section has 3 bytes but the tensors cover only 2: 1 trailing bytes") != std::string::npos);
}
TEST_CASE("rejects duplicate tensor names") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2));
  CHECK(e.find("malformed JSON header: duplicate key 'a'") != std::string::npos);
  e = open_error(st_bytes(R"({"a":{"dtype":"U8","dtype":"I8","shape":[2],"data_offsets":[0,2]}})", 2));
  CHECK(e.find("duplicate key 'dtype'") != std::string::npos);
}
TEST_CASE("rejects bad shapes and offsets") {
  auto e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}})", 2));
  CHECK(e.find("tensor 'a': shape [-2] has a dimension that is not a non-negative integer") != std::string::npos);
  e = open_error(st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0]}})", 2));
  CHECK(e.find("\"data_offsets\" is not a pair") != std::string::npos);
  e = open_error(st_bytes(R"({"a":{"dtype":"U8","data_offsets":[0,2]}})", 2));
  CHECK(e.find("\"shape\"") != std::string::npos);
  e = open_error(st_bytes(R"({"a":[1]})", 0));
  CHECK(e.find("tensor 'a': header entry is not a JSON object") != std::string::npos);
}
TEST_CASE("accepts what the reference reader accepts") {
  CHECK(open_error(st_bytes("{}", 0)).empty());
  CHECK(open_error(st_bytes(R"(  {"__metadata__":null,"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":1}})", 2))
            .empty());
  CHECK(open_error(st_bytes(R"({"e":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2))
            .empty());
  CHECK_THROWS_WITH_AS(st::File::open("/nonexistent/x.safetensors"),
                       doctest::Contains("cannot open /nonexistent/x.safetensors"), Error);
}

TEST_CASE("sharded checkpoint errors name the index and the problem") {
  auto py = st_dir() / "py_sharded";
  auto copy_dir = [&](const std::string& tag) {
    fs::path d = temp_dir(tag);
    for (const auto& e : fs::directory_iterator(py)) fs::copy_file(e.path(), d / e.path().filename());
    return d;
  };
  auto err = [](const fs::path& d) -> std::string {
    try {
      st::TensorSet::open_dir(d);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  fs::path d = copy_dir("st-missing-shard");
  fs::remove(d / "model-00002-of-00002.safetensors");
  auto e = err(d);
  CHECK(e.find("model.safetensors.index.json") != std::string::npos);
  CHECK(e.find("is mapped to shard model-00002-of-00002.safetensors, which does not exist") != std::string::npos);

  d = copy_dir("st-not-held");
  auto idx = json::parse(read_file(d / "model.safetensors.index.json"));
  idx["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  write_file_atomic(d / "model.safetensors.index.json", idx.dump());
  e = err(d);
  CHECK(e.find("tensor 'model.norm.weight' is mapped to shard model-00001-of-00002.safetensors, which does not hold "
               "it") != std::string::npos);

  d = copy_dir("st-two-shards");  // a third shard that also holds model.norm.weight
  {
    auto src = st::File::open(d / "model-00002-of-00002.safetensors");
    const auto& t = *src->find("model.norm.weight");
    st::Writer w(d / "extra.safetensors", {t});
    w.write(t.name, src->view(t).data, t.nbytes());
    w.finish();
  }
  idx = json::parse(read_file(d / "model.safetensors.index.json"));
  idx["weight_map"]["extra.bias"] = "extra.safetensors";
  write_file_atomic(d / "model.safetensors.index.json", idx.dump());
  e = err(d);  // the index names extra.bias, which extra.safetensors lacks: caught first
  CHECK(e.find("tensor 'extra.bias' is mapped to shard extra.safetensors, which does not hold it") !=
        std::string::npos);
  idx["weight_map"].erase("extra.bias");
  idx["weight_map"]["model.norm.weight"] = "extra.safetensors";
  write_file_atomic(d / "model.safetensors.index.json", idx.dump());
  e = err(d);
  CHECK(e.find("tensor 'model.norm.weight' appears in two shards") != std::string::npos);

  d = copy_dir("st-bad-index");
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map": [1]})");
  CHECK(err(d).find("no \"weight_map\" object") != std::string::npos);
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map": {"a": "x", "a": "y"}})");
  CHECK(err(d).find("duplicate key 'a'") != std::string::npos);

  CHECK(err(temp_dir("st-empty")).find("no model.safetensors or model.safetensors.index.json") != std::string::npos);
}
