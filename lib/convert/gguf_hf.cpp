#include "lib/convert/gguf_hf.h"

#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "lib/calib/output.h"
#include "lib/core/error.h"
#include "lib/model/checkpoint.h"

namespace llmopt::convert {

nlohmann::json GgufExport::to_json() const {
  return {{"tensors", tensors}, {"parameters", parameters}, {"bytes", bytes}};
}

DType export_dtype(const std::string& name) {
  std::string n;
  for (char ch : name) n += char(std::tolower(static_cast<unsigned char>(ch)));
  if (n.empty() || n == "f32" || n == "float32") return DType::F32;
  if (n == "bf16" || n == "bfloat16") return DType::BF16;
  if (n == "f16" || n == "float16") return DType::F16;
  fail("--dtype {}: expected f32, bf16 or f16", name);
}

GgufExport export_gguf_to_hf(const std::filesystem::path& gguf_file, const std::filesystem::path& out, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    fail("--dtype {} is not supported for a GGUF export (f32, bf16, f16)", dtype_name(dtype));
  if (!model::is_gguf_file(gguf_file)) fail("{} is not a .gguf file", gguf_file.string());
  const model::Checkpoint ck = model::Checkpoint::load(gguf_file);  // tensors: fp32 under HF names
  nlohmann::json config = model::gguf_config_json(*ck.gguf);
  config["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::BF16 ? "bfloat16" : "float16";

  // every tensor is re-declared in `dtype` (for F32 the in-memory tensors are copied as they are)
  std::map<std::string, std::vector<PackedTensor>> replaced;
  const auto names = ck.tensors.names();
  if (dtype != DType::F32)
    for (const auto& name : names)
      replaced[name] = {{name.substr(name.rfind('.') + 1), dtype, ck.tensors.info(name).shape, {}}};
  calib::OutputDir dst(ck, out, replaced);
  GgufExport r;
  for (const auto& name : names) {
    const auto v = ck.tensors.get(name);
    ++r.tensors;
    r.parameters += v.numel();
    if (dtype == DType::F32) continue;
    const auto& spec = replaced.at(name).front();
    dst.write_linear(name.substr(0, name.rfind('.')), {{spec.suffix, dtype, spec.shape, calib::to_dtype(v.to_f32(), dtype)}});
  }
  dst.commit(config);
  r.bytes = calib::dir_bytes(out);
  return r;
}

}  // namespace llmopt::convert
