#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "fuzz/targets/targets.h"
#include "lib/core/log.h"

namespace llmopt::fuzz {
namespace fs = std::filesystem;

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {{"safetensors", safetensors}, {"st_index", st_index},
                                        {"config", config},           {"tokenizer_json", tokenizer_json},
                                        {"encode", encode},           {"detokenize", detokenize}};
  return t;
}

Harness find(const std::string& name) {
  for (const auto& t : targets())
    if (name == t.name) return t.run;
  return nullptr;
}

namespace {
struct Scratch {
  fs::path dir;
  Scratch() {
    log::set_level(log::Level::silent);  // warnings about odd-but-valid input would flood the fuzzer's output
    const char* shm = "/dev/shm";          // tmpfs: the harnesses write a file per input
    fs::path base = fs::is_directory(shm) && access(shm, W_OK) == 0 ? fs::path(shm) : fs::temp_directory_path();
    std::string tmpl = (base / "llmopt-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};
}  // namespace

const fs::path& scratch() {
  static Scratch s;
  return s.dir;
}

void put(const fs::path& p, const uint8_t* data, size_t size) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  if (!f) std::abort();
}

fs::path source_dir() { return LLMOPT_SOURCE_DIR; }
fs::path shared_dir() { return fs::path(LLMOPT_SHARED_DIR).lexically_normal(); }

}  // namespace llmopt::fuzz
