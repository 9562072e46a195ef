// The GGUF reader (formats/gguf_read.h): files from our writer, from gguf-py's GGUFWriter
// (testdata/gguf/pywriter.gguf; what gguf.GGUFReader reads from it is in pywriter.json), the real SmolLM2
// file under ../shared (smollm2_expect.json, from GGUFReader), and malformed files made here.
// References: scripts/golden/gguf_read_golden.py.
#include "formats/gguf_read.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "tests/support/test_paths.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;
using gguf::Type;
using gguf::VType;

namespace {
fs::path gdir() { return test::testdata_dir() / "gguf"; }

void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), std::streamsize(s.size()));
}

// ---- a minimal GGUF builder for the malformed cases -------------------------------------------------
template <typename T> void put(std::string& s, T v) { s.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
void put_str(std::string& s, const std::string& v, uint64_t len = UINT64_MAX) {
  put<uint64_t>(s, len == UINT64_MAX ? v.size() : len);
  s += v;
}
struct TI {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first, as stored
  uint32_t type = 0;
  uint64_t offset = 0;
};
struct Spec {
  uint32_t version = 3;
  std::vector<std::string> kvs;  // encoded key + type + value
  std::vector<TI> tensors;
  uint64_t align = 32;
  std::string data;
  int64_t n_kv = -1, n_tensors = -1;  // overrides of the counts
};
std::string kv_u32(const std::string& k, uint32_t v) {
  std::string s;
  put_str(s, k), put<uint32_t>(s, 4), put<uint32_t>(s, v);
  return s;
}
std::string kv_str(const std::string& k, const std::string& v) {
  std::string s;
  put_str(s, k), put<uint32_t>(s, 8), put_str(s, v);
  return s;
}
std::string build(const Spec& g) {
  std::string s = "GGUF";
  put<uint32_t>(s, g.version);
  put<uint64_t>(s, g.n_tensors >= 0 ? uint64_t(g.n_tensors) : g.tensors.size());
  put<uint64_t>(s, g.n_kv >= 0 ? uint64_t(g.n_kv) : g.kvs.size());
  for (auto& kv : g.kvs) s += kv;
  for (auto& t : g.tensors) {
    put_str(s, t.name);
    put<uint32_t>(s, uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(s, d);
    put<uint32_t>(s, t.type), put<uint64_t>(s, t.offset);
  }
  s.resize((s.size() + g.align - 1) / g.align * g.align, '\0');
  return s + g.data;
}
// Two F32 [2, 8] tensors back to back, with a key.
Spec good() {
  Spec g;
  g.kvs = {kv_str("general.architecture", "llama")};
  g.tensors = {{"a", {8, 2}, 0, 0}, {"b", {8, 2}, 0, 64}};
  g.data.assign(128, '\x01');
  return g;
}

std::string open_error(const std::string& bytes, const std::string& tag) {
  const fs::path p = test::temp_dir("gguf-bad") / (tag + ".gguf");
  write_bytes(p, bytes);
  try {
    gguf::File::open(p);
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find(p.string()) != std::string::npos);  // names the file
    CHECK(msg.find('\n') == std::string::npos);         // one line
    return msg;
  }
  return "(opened)";
}
}  // namespace

TEST_CASE("GGUF read: our writer's file, every value and tensor; version 2 reads the same") {
  gguf::Metadata m;
  m.set_str("general.architecture", "llama");
  m.set_u32("t.u32", 4000000000u);
  m.set_i32("t.i32", -7);
  m.set_u64("t.u64", 1ull << 40);
  m.set_f32("t.f32", 0.1f);
  m.set_bool("t.bool", true);
  m.set_str("t.str", "h\xc3\xa9llo");
  m.set_str_array("t.strs", {"a", "", "\xe2\x96\x81x"});
  m.set_f32_array("t.f32s", {1.5f, -2.0f});
  m.set_i32_array("t.i32s", {1, -2, 3});
  const Type types[] = {Type::F32, Type::F16, Type::BF16, Type::Q8_0, Type::Q4_0, Type::Q4_1};
  std::vector<gguf::TensorSpec> specs;
  std::vector<float> x(3 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i)) * 2.0f;
  for (Type t : types) specs.push_back({gguf::type_name(t), {3, 64}, t});
  specs.push_back({"vec", {5}, Type::F32});
  const fs::path path = test::temp_dir("gguf-read") / "ours.gguf";
  {
    gguf::Writer w(path, m, specs);
    for (Type t : types) w.write_f32(gguf::type_name(t), x.data(), x.size());
    const float v[5] = {1, 2, 3, 4, 5};
    w.write_f32("vec", v, 5);
    w.finish();
  }
  for (uint32_t version : {3u, 2u}) {
    INFO("version ", version);
    fs::path p = path;
    if (version == 2) {  // v2 differs from v3 only in the version field (v3 added big-endian files)
      std::string b = read_file(path);
      std::memcpy(b.data() + 4, &version, 4);
      p = path.parent_path() / "v2.gguf";
      write_bytes(p, b);
    }
    const auto f = gguf::File::open(p);
    CHECK(f->version() == version);
    CHECK(f->alignment() == 32);
    CHECK(f->metadata().size() == m.size() + 1);  // the writer adds general.alignment
    CHECK(f->integer("general.alignment") == 32);
    CHECK(f->string("general.architecture") == "llama");
    CHECK(f->integer("t.u32") == 4000000000);
    CHECK(f->find_key("t.u32")->type == VType::U32);
    CHECK(f->integer("t.i32") == -7);
    CHECK(f->integer("t.u64") == (1ll << 40));
    CHECK(f->number("t.f32") == double(0.1f));
    CHECK(f->boolean("t.bool"));
    CHECK(f->string("t.str") == "h\xc3\xa9llo");
    CHECK(f->strings("t.strs") == std::vector<std::string>{"a", "", "\xe2\x96\x81x"});
    CHECK(f->numbers("t.f32s") == std::vector<double>{1.5, -2.0});
    CHECK(f->integers("t.i32s") == std::vector<int64_t>{1, -2, 3});
    REQUIRE(f->tensors().size() == specs.size());
    for (Type t : types) {
      INFO(gguf::type_name(t));
      const auto& ti = f->tensor(gguf::type_name(t));
      CHECK(ti.type == t);
      CHECK(ti.shape == std::vector<int64_t>{3, 64});
      CHECK(ti.offset % 32 == 0);
      CHECK(ti.nbytes == 3 * gguf::row_bytes(t, 64));
      std::vector<uint8_t> enc(ti.nbytes);
      std::vector<float> want(x.size());
      for (int r = 0; r < 3; ++r) {
        gguf::quantize_row(t, x.data() + 64 * r, 64, enc.data() + r * gguf::row_bytes(t, 64));
        gguf::dequantize_row(t, enc.data() + r * gguf::row_bytes(t, 64), 64, want.data() + 64 * r);
      }
      CHECK(std::memcmp(ti.data, enc.data(), enc.size()) == 0);
      CHECK(f->to_f32(ti) == want);
    }
    CHECK(f->to_f32(f->tensor("vec")) == std::vector<float>{1, 2, 3, 4, 5});
  }
}

TEST_CASE("GGUF read: gguf-py's GGUFWriter file, every metadata value type, nested arrays, alignment 64") {
  const auto g = nlohmann::ordered_json::parse(read_file(gdir() / "pywriter.json"));
  const auto f = gguf::File::open(gdir() / "pywriter.gguf");
  CHECK(f->version() == g["version"].get<uint32_t>());
  CHECK(f->alignment() == g["alignment"].get<uint64_t>());
  CHECK(f->data_offset() == g["data_offset"].get<uint64_t>());
  REQUIRE(f->metadata().size() == g["kv"].size());
  REQUIRE(f->metadata().size() == g["kv_count"].get<size_t>());
  // Compares one value with GGUFReader's view of it (types: outer type, then element types).
  using ojson = nlohmann::ordered_json;
  std::function<void(const gguf::Value&, const ojson&, const ojson&, size_t)> same =
      [&](const gguf::Value& v, const ojson& want, const ojson& types, size_t level) {
    const std::string tn = types[level].get<std::string>();
    CHECK(std::string(gguf::vtype_name(v.type)) == tn);
    switch (v.type) {
      case VType::ARRAY:
        REQUIRE(want.is_array());
        CHECK(std::string(gguf::vtype_name(v.elem)) == types[level + 1].get<std::string>());
        REQUIRE(v.items.size() == want.size());
        for (size_t i = 0; i < want.size(); ++i) same(v.items[i], want[i], types, level + 1);
        return;
      case VType::STRING: CHECK(v.s == want.get<std::string>()); return;
      case VType::BOOL: CHECK((v.u != 0) == want.get<bool>()); return;
      case VType::F32: case VType::F64: CHECK(v.f == want.get<double>()); return;
      case VType::U8: case VType::U16: case VType::U32: case VType::U64: CHECK(v.u == want.get<uint64_t>()); return;
      default: CHECK(v.i == want.get<int64_t>()); return;
    }
  };
  size_t k = 0;
  for (auto& [key, want] : g["kv"].items()) {
    INFO(key);
    CHECK(f->metadata()[k++].first == key);  // file order
    const gguf::Value* v = f->find_key(key);
    REQUIRE(v);
    same(*v, want["value"], want["types"], 0);
  }
  CHECK(f->integer("t.i64") == -(int64_t(1) << 62));
  CHECK_THROWS_WITH_AS(f->integer("t.u64"), doctest::Contains("does not fit in a signed 64-bit integer"), Error);
  REQUIRE(f->tensors().size() == g["tensors"].size());
  for (size_t i = 0; i < g["tensors"].size(); ++i) {
    const auto& w = g["tensors"][i];
    const gguf::TensorInfo& t = f->tensors()[i];
    INFO(t.name);
    CHECK(t.name == w["name"].get<std::string>());
    CHECK(t.shape == w["shape"].get<std::vector<int64_t>>());
    CHECK(std::string(gguf::type_name(t.type)) == w["type"].get<std::string>());
    CHECK(t.offset == w["offset"].get<uint64_t>());
    CHECK(t.nbytes == w["nbytes"].get<uint64_t>());
    CHECK(f->to_f32(t) == w["values"].get<std::vector<float>>());
  }
}

TEST_CASE("GGUF read: the real SmolLM2-135M-Instruct Q4_1 file matches gguf.GGUFReader") {
  const fs::path p = test::shared_dir() / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(p)) {
    MESSAGE("skipped: " << p << " is absent");
    return;
  }
  const json g = json::parse(read_file(gdir() / "smollm2_expect.json"));
  const auto f = gguf::File::open(p);
  CHECK(f->version() == g["version"].get<uint32_t>());
  CHECK(f->data_offset() == g["data_offset"].get<uint64_t>());
  CHECK(f->alignment() == g["alignment"].get<uint64_t>());
  CHECK(f->metadata().size() == g["kv_count"].get<size_t>());
  REQUIRE(f->tensors().size() == g["tensor_count"].get<size_t>());
  for (const char* key : {"llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.attention.head_count_kv", "llama.context_length",
                          "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "general.file_type"})
    CHECK(f->integer(key) == g["kv"][key]["value"].get<int64_t>());
  CHECK(f->number("llama.rope.freq_base") == g["kv"]["llama.rope.freq_base"]["value"].get<double>());
  CHECK(f->number("llama.attention.layer_norm_rms_epsilon") ==
        g["kv"]["llama.attention.layer_norm_rms_epsilon"]["value"].get<double>());
  CHECK(f->string("general.architecture") == g["kv"]["general.architecture"]["value"].get<std::string>());
  CHECK(f->string("tokenizer.ggml.pre") == g["kv"]["tokenizer.ggml.pre"]["value"].get<std::string>());
  CHECK(f->boolean("tokenizer.ggml.add_bos_token") == g["kv"]["tokenizer.ggml.add_bos_token"]["value"].get<bool>());
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"}) {
    const auto v = f->strings(key);
    const json& w = g["kv"][key];
    CHECK(v.size() == w["len"].get<size_t>());
    CHECK(std::vector<std::string>(v.begin(), v.begin() + 3) == w["first"].get<std::vector<std::string>>());
    CHECK(v.back() == w["last"].get<std::string>());
  }
  CHECK(f->integers("tokenizer.ggml.token_type").size() == g["kv"]["tokenizer.ggml.token_type"]["len"].get<size_t>());
  for (size_t i = 0; i < g["tensors"].size(); ++i) {
    const json& w = g["tensors"][i];
    const gguf::TensorInfo& t = f->tensors()[i];
    INFO(t.name);
    CHECK(t.name == w["name"].get<std::string>());
    CHECK(t.shape == w["shape"].get<std::vector<int64_t>>());
    CHECK(std::string(gguf::type_name(t.type)) == w["type"].get<std::string>());
    CHECK(t.offset == w["offset"].get<uint64_t>());
    CHECK(t.nbytes == w["nbytes"].get<uint64_t>());
    if (w.contains("sum")) {
      const std::vector<float> y = f->to_f32(t);
      double sum = 0;
      for (float v : y) sum += v;
      CHECK(sum == doctest::Approx(w["sum"].get<double>()).epsilon(1e-9));
      CHECK(std::vector<float>(y.begin(), y.begin() + 8) == w["first"].get<std::vector<float>>());
    }
  }
  CHECK(f->tensor("blk.0.attn_k.weight").shape == std::vector<int64_t>{192, 576});
  CHECK(f->tensor("token_embd.weight").type == Type::Q8_0);
  CHECK(f->find("output.weight") == nullptr);  // tied embeddings
}

TEST_CASE("GGUF read: typed getters name the key when it is missing or of the wrong type") {
  const auto f = gguf::File::open(gdir() / "pywriter.gguf");
  CHECK_THROWS_WITH_AS(f->integer("no.such"), doctest::Contains("metadata key 'no.such' is missing"), Error);
  CHECK_THROWS_WITH_AS(f->string("t.u32"), doctest::Contains("metadata key 't.u32' is UINT32, expected STRING"), Error);
  CHECK_THROWS_WITH_AS(f->integer("t.str"), doctest::Contains("'t.str' is STRING, expected an integer"), Error);
  CHECK_THROWS_WITH_AS(f->strings("t.arr_i32"), doctest::Contains("is ARRAY of INT32, expected ARRAY of STRING"), Error);
  CHECK_THROWS_WITH_AS(f->boolean("t.f32"), doctest::Contains("expected BOOL"), Error);
  CHECK_THROWS_WITH_AS(f->tensor("nope"), doctest::Contains("no tensor named 'nope'"), Error);
  CHECK(f->integer_or("no.such", 5) == 5);
  CHECK(f->number("t.u8") == 250.0);
}

TEST_CASE("GGUF read: malformed files give one clear error each") {
  CHECK(open_error(build(good()), "good") == "(opened)");
  const std::string ok = build(good());
  auto with = [](auto edit) {
    Spec g = good();
    edit(g);
    return build(g);
  };
  // Every truncation of a valid file fails cleanly (truncated or past the end), never crashes.
  for (size_t n = 0; n < ok.size(); n += (n < 200 ? 1 : 16)) {
    const std::string e = open_error(ok.substr(0, n), "trunc");
    INFO(n, ": ", e);
    CHECK((e.find("truncated") != std::string::npos || e.find("run past the end") != std::string::npos ||
           e.find("absurd") != std::string::npos || e.find("beyond the") != std::string::npos));
  }
  std::string bad_magic = ok;
  bad_magic[0] = 'X';
  CHECK(open_error(bad_magic, "magic").find("bad magic") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.version = 1; }), "v1").find("unsupported GGUF version 1") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.version = 0x03000000; }), "be").find("big-endian") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.n_kv = int64_t(1) << 40; }), "nkv").find("metadata count 1099511627776 is absurd") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.n_tensors = int64_t(1) << 50; }), "nt").find("tensor count") != std::string::npos);
  CHECK(open_error(with([](Spec& g) {
                     std::string s;
                     put_str(s, "k", 1ull << 60);
                     g.kvs.push_back(s);
                   }), "keylen").find("has length 1152921504606846976, beyond the") != std::string::npos);
  CHECK(open_error(with([](Spec& g) {
                     std::string s;
                     put_str(s, "arr"), put<uint32_t>(s, 9), put<uint32_t>(s, 4), put<uint64_t>(s, 1ull << 61);
                     g.kvs.push_back(s);
                   }), "arrlen").find("'arr': array length 2305843009213693952") != std::string::npos);
  CHECK(open_error(with([](Spec& g) {
                     std::string s;
                     put_str(s, "weird"), put<uint32_t>(s, 13), put<uint32_t>(s, 0);
                     g.kvs.push_back(s);
                   }), "vtype").find("'weird': unknown value type 13") != std::string::npos);
  CHECK(open_error(with([](Spec& g) {
                     std::string s;
                     put_str(s, "b"), put<uint32_t>(s, 7), put<uint8_t>(s, 2);
                     g.kvs.push_back(s);
                   }), "bool").find("BOOL value 2") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.kvs.push_back(kv_str("general.architecture", "x")); }), "dupkey")
            .find("duplicate metadata key 'general.architecture'") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.kvs.push_back(kv_u32("general.alignment", 48)); }), "align")
            .find("general.alignment 48 is not a power of two") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[1].name = "a"; }), "dupname").find("duplicate tensor name 'a'") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[1].offset = 6400; }), "past").find("tensor 'b': 64 bytes at data offset 6400 run past the end") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[1].offset = 32; }), "overlap").find("tensor 'b' at data offset 32 overlaps tensor 'a'") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[1].offset = 48; }), "misaligned").find("offset 48 is not a multiple of the alignment 32") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[0].type = 4; }), "type4").find("tensor 'a' has unknown or unsupported ggml type 4") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[0].type = 99; }), "type99").find("ggml type 99") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[0].type = 8, g.tensors[0].ne = {8, 2}; }), "blocks")
            .find("not a whole number of 32-element blocks") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[0].ne = {1ull << 40, 1ull << 40}; }), "overflow").find("overflows") !=
        std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[0].ne = {1, 1, 1, 1, 16}; }), "dims").find("has 5 dimensions") !=
        std::string::npos);
  // GGUF has no size field: type x shape that disagrees with the layout shows as an overlap or a short file.
  CHECK(open_error(with([](Spec& g) { g.tensors[0].ne = {8, 4}; }), "size2").find("overlaps tensor 'a'") != std::string::npos);
  CHECK(open_error(with([](Spec& g) { g.tensors[1].ne = {8, 4}; }), "size3").find("run past the end") != std::string::npos);
  CHECK(open_error("", "empty").find("truncated GGUF file: 0 bytes") != std::string::npos);
  CHECK_THROWS_WITH_AS(gguf::File::open(gdir() / "missing.gguf"), doctest::Contains("cannot open"), Error);
}
