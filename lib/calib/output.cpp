#include "lib/calib/output.h"

#include <cstring>

namespace llmopt::calib {
namespace fs = std::filesystem;

namespace {

bool is_weight_file(const fs::path& p) {
  const std::string n = p.filename().string(), ext = p.extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".gguf" ||
         n == "model.safetensors.index.json" || n == "pytorch_model.bin.index.json" || n == "config.json";
}

std::string prefix_of(const std::string& weight_name) { return weight_name.substr(0, weight_name.size() - 7); }

}  // namespace

OutputDir::OutputDir(const model::Checkpoint& ck, const fs::path& out,
                     const std::map<std::string, std::vector<PackedTensor>>& replaced)
    : in_dir_(ck.dir), dst_(out, AtomicOutput::Kind::Directory) {
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
  writer_ = std::make_unique<st::ShardedWriter>(dst_.path(), specs, 5'000'000'000ull,
                                                std::map<std::string, std::string>{{"format", "pt"}});
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

void OutputDir::commit(const nlohmann::json& config) {
  writer_->finish();
  write_file_atomic(dst_.path() / "config.json", config.dump(2) + "\n");
  for (const auto& e : fs::directory_iterator(in_dir_))
    if (e.is_regular_file() && !is_weight_file(e.path())) {
      fs::copy_file(e.path(), dst_.path() / e.path().filename());
      fs::permissions(dst_.path() / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::add);
    }
  dst_.commit();
}

std::vector<std::byte> to_dtype(const std::vector<float>& w, DType t) {
  std::vector<std::byte> b(w.size() * dtype_size(t));
  for (size_t i = 0; i < w.size(); ++i) {
    if (t == DType::F32) {
      std::memcpy(&b[i * 4], &w[i], 4);
    } else {
      const uint16_t h = t == DType::F16 ? f32_to_f16(w[i]) : f32_to_bf16(w[i]);
      std::memcpy(&b[i * 2], &h, 2);
    }
  }
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
