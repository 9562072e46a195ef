#pragma once
// The output Hugging Face directory of quantize, prune and convert, written atomically:
//   model.safetensors (sharded above 5 GB by default): every tensor of the input checkpoint in its order, the
//     replaced ones (a linear's ".weight" → packed codes + scales or a dense weight; convert's pooled or
//     permuted attention tensors) as the caller streams them, e.g. layer by layer as the runner finishes them;
//   config.json: the caller's (the input's plus quantization_config / sparsity_config; convert's edited text);
//   every other file of the input (tokenizer, generation config) copied; for a .gguf input, those files made
//   from its metadata (generation_config.json, tokenizer.json, tokenizer_config.json with the chat template).
// Nothing appears at `out` until commit(); an exception on the way leaves nothing behind.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/quant_layout.h"
#include "formats/safetensors.h"
#include "lib/core/fsutil.h"
#include "lib/model/checkpoint.h"

namespace llmopt::calib {

struct OutputOptions {
  uint64_t max_shard_bytes = 5'000'000'000;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};  // the safetensors __metadata__
};

class OutputDir {
 public:
  // replaced: tensor name ("model.layers.0.mlp.up_proj.weight") → the tensors stored instead, as specs
  // (suffix under the tensor's prefix "model.layers.0.mlp.up_proj", dtype, shape; no data). Every other
  // tensor of ck is copied now.
  OutputDir(const model::Checkpoint& ck, const std::filesystem::path& out,
            const std::map<std::string, std::vector<PackedTensor>>& replaced, const OutputOptions& opt = {});
  ~OutputDir();

  // A linear's tensors (prefix "model.layers.0.mlp.up_proj"), matching its specs.
  void write_linear(const std::string& prefix, const std::vector<PackedTensor>& tensors);
  // Finish the shards, write config.json, copy the non-weight files of the input, rename into place.
  void commit(const nlohmann::json& config);
  // The same with config.json's text as given (convert keeps the input's key order).
  void commit(const std::string& config_json_text);

 private:
  std::filesystem::path in_dir_;
  std::shared_ptr<const gguf::File> gguf_;  // set for a .gguf input
  AtomicOutput dst_;
  std::unique_ptr<st::ShardedWriter> writer_;
};

// fp32 values as `t` (F32, F16 or BF16) bytes, for a dense weight written in the model's own dtype.
std::vector<std::byte> to_dtype(const std::vector<float>& w, DType t);

// Bytes of a file, or of every file under a directory.
uint64_t dir_bytes(const std::filesystem::path& p);

}  // namespace llmopt::calib
