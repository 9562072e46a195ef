#pragma once
// A .gguf file as a Hugging Face directory that `transformers` loads: config.json from its metadata,
// model.safetensors with every tensor dequantized (llama.cpp's q/k row permutation undone) and stored in
// `dtype`, and the tokenizer and generation files made from its metadata (lib/calib/hf_files.h).
// Written atomically: nothing appears at `out` unless all of it was written.
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/core/dtype.h"

namespace llmopt::convert {

struct GgufExport {
  int64_t tensors = 0, parameters = 0;
  uint64_t bytes = 0;  // of the output directory
  nlohmann::json to_json() const;
};

// "f32" (also ""), "bf16" or "f16", any case; Error naming --dtype otherwise.
DType export_dtype(const std::string& name);

// dtype: F32, BF16 or F16.
GgufExport export_gguf_to_hf(const std::filesystem::path& gguf_file, const std::filesystem::path& out, DType dtype);

}  // namespace llmopt::convert
