#include "lib/calib/output.h"

#include "lib/core/error.h"
#include "lib/tokenizer/tokenizer.h"

namespace llmopt::calib {
namespace fs = std::filesystem;

namespace {

// "model.layers.0.mlp.up_proj.weight" → "model.layers.0.mlp.up_proj"
std::string prefix_of(const std::string& name) { return name.substr(0, name.rfind('.')); }

// generation_config.json (bos/eos/pad ids) and the tokenizer files of a .gguf input, from its metadata.
void write_gguf_side_files(const gguf::File& f, const fs::path& dir) {
  nlohmann::json g = nlohmann::json::object();
  for (const auto& [key, name] : {std::pair{"tokenizer.ggml.bos_token_id", "bos_token_id"},
                                  std::pair{"tokenizer.ggml.eos_token_id", "eos_token_id"},
                                  std::pair{"tokenizer.ggml.padding_token_id", "pad_token_id"}})
    if (f.has(key)) g[name] = f.integer(key);
  write_file_atomic(dir / "generation_config.json", g.dump(2) + "\n");
  if (f.has("tokenizer.ggml.model")) tok::write_hf_tokenizer(f, dir);  // a file without one gives a dir without one
}

}  // namespace

OutputDir::OutputDir(const model::Checkpoint& ck, const fs::path& out,
                     const std::map<std::string, std::vector<PackedTensor>>& replaced, const OutputOptions& opt)
    : in_dir_(ck.dir), gguf_(ck.gguf), dst_(out, AtomicOutput::Kind::Directory) {
  // declare every output tensor first (the streaming writer needs the header), then copy the untouched ones
  std::vector<st::TensorInfo> specs;
  for (const auto& name : ck.tensors.names()) {
    auto it = replaced.find(name);
    if (it == replaced.end()) {
      const auto& info = ck.tensors.info(name);
      specs.push_back({name, info.dtype, info.shape});
      continue;
    }
    for (const auto& p : it->second) specs.push_back({prefix_of(name) + "." + p.suffix, p.dtype, p.shape});
  }
  writer_ = std::make_unique<st::ShardedWriter>(dst_.path(), specs, opt.max_shard_bytes, opt.metadata);
  for (const auto& name : ck.tensors.names())
    if (!replaced.count(name)) {
      const auto v = ck.tensors.get(name);
      writer_->write(name, v.data, v.nbytes());
    }
}

OutputDir::~OutputDir() = default;

void OutputDir::write_linear(const std::string& prefix, const std::vector<PackedTensor>& tensors) {
  for (const auto& p : tensors) writer_->write(prefix + "." + p.suffix, p.data.data(), p.data.size());
}

void OutputDir::commit(const nlohmann::json& config) { commit(config.dump(2) + "\n"); }

void OutputDir::commit(const std::string& config_json_text) {
  writer_->finish();
  write_file_atomic(dst_.path() / "config.json", config_json_text);
  if (gguf_) {  // a .gguf input: its tokenizer and generation settings as Hugging Face files
    write_gguf_side_files(*gguf_, dst_.path());
    dst_.commit();
    return;
  }
  std::error_code list_ec;
  for (const auto& e : fs::directory_iterator(in_dir_, list_ec)) {
    if (!e.is_regular_file() || is_weight_file(e.path())) continue;
    const fs::path to = dst_.path() / e.path().filename();
    std::error_code ec;
    fs::copy_file(e.path(), to, ec);
    if (!ec) fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add, ec);
    if (ec) fail("cannot copy {} to {}: {}", e.path().string(), to.string(), ec.message());
  }
  if (list_ec) fail("cannot list {}: {}", in_dir_.string(), list_ec.message());
  dst_.commit();
}

std::vector<std::byte> to_dtype(const std::vector<float>& w, DType t) {
  std::vector<std::byte> b(w.size() * dtype_size(t));
  from_f32(t, w.data(), b.data(), w.size());
  return b;
}

uint64_t dir_bytes(const fs::path& p) {
  if (fs::is_regular_file(p)) return fs::file_size(p);
  uint64_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

}  // namespace llmopt::calib
