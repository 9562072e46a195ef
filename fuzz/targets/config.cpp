// config.json: parsed and validated as `llmopt inspect` does, then checked against a real checkpoint's
// tensors (every expected tensor and its shape) and its KV-cache size computed.
#include "fuzz/targets/targets.h"
#include "lib/core/error.h"
#include "lib/core/json.h"
#include "lib/model/checkpoint.h"
#include "lib/model/inspect.h"

namespace llmopt::fuzz {
namespace fs = std::filesystem;

int config(const uint8_t* data, size_t size) {
  const fs::path dir = scratch() / "model";
  if (!fs::exists(dir)) {
    fs::create_directory(dir);
    fs::create_symlink(source_dir() / "testdata/models/tiny-llama3/model.safetensors", dir / "model.safetensors");
  }
  put(dir / "config.json", data, size);
  try {
    const model::ModelConfig c = model::load_config(dir);
    volatile int64_t sink = c.kv_bytes_per_token(2) + c.bos_id();
    (void)sink;
    const auto ck = model::Checkpoint::load(dir);
    const auto rep = model::inspect(ck, 4096, 4);
    sink = rep.kv_bytes_per_token;
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace llmopt::fuzz
