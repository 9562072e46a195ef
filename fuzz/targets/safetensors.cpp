// safetensors: a whole file (File::open validates the header against the data section), and the shard
// index of a sharded checkpoint (TensorSet::open_dir over two real shards).
#include "formats/safetensors.h"
#include "fuzz/targets/targets.h"
#include "lib/core/error.h"

namespace llmopt::fuzz {
namespace fs = std::filesystem;

namespace {
// Reads every byte of every tensor the way the model loader does (to_f32), so a header that points outside
// the mapping shows up as an invalid read.
double touch(const st::TensorView& v) {
  double sum = 0;
  for (float x : v.to_f32()) sum += double(x);
  return sum + double(v.numel()) + double(v.nbytes());
}
}  // namespace

int safetensors(const uint8_t* data, size_t size) {
  const fs::path p = scratch() / "fuzz.safetensors";
  put(p, data, size);
  try {
    const auto f = st::File::open(p);
    double sum = 0;
    for (const auto& t : f->tensors()) {
      if (f->find(t.name) != &t) std::abort();  // the index must agree with the list
      sum += touch(f->view(t));
    }
    for (const auto& [k, v] : f->metadata()) sum += double(k.size() + v.size());
    const auto set = st::TensorSet::open_file(p);
    for (const auto& n : set.names()) sum += double(set.get(n).nbytes());
    volatile double sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}

int st_index(const uint8_t* data, size_t size) {
  const fs::path dir = scratch() / "sharded";
  if (!fs::exists(dir)) {  // the real shards the index may point at (symlinks: nothing is copied)
    fs::create_directory(dir);
    const fs::path src = source_dir() / "testdata/safetensors/py_sharded";
    for (const char* s : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
      fs::create_symlink(src / s, dir / s);
  }
  put(dir / "model.safetensors.index.json", data, size);
  try {
    const auto set = st::TensorSet::open_dir(dir);
    double sum = 0;
    for (const auto& n : set.names()) {
      const auto v = set.get(n);
      if (&set.info(n) != v.info) std::abort();
      sum += touch(v);
    }
    volatile double sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace llmopt::fuzz
