#pragma once
// The fuzz harnesses, one function per input kind: each feeds `data` to the parser the CLI uses and
// exercises what it returns. Bad input must end as an llmopt::Error (caught here); anything else (a crash,
// a sanitizer report, another exception) is a finding. Built into llmopt_fuzz, which both the libFuzzer
// binaries (fuzz/fuzz_*.cpp, -DLLMOPT_FUZZ=ON) and the replay test (tests/fuzz) link.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace llmopt::fuzz {

using Harness = int (*)(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // also the folder of its seeds (testdata/fuzz/seeds/NAME) and crashes (testdata/fuzz/NAME)
  Harness run;
};
const std::vector<Target>& targets();
Harness find(const std::string& name);  // nullptr if unknown

int safetensors(const uint8_t* data, size_t size);    // one .safetensors file: header and tensor data
int st_index(const uint8_t* data, size_t size);       // model.safetensors.index.json over two real shards
int config(const uint8_t* data, size_t size);         // config.json, parsed and checked against real weights
int tokenizer_json(const uint8_t* data, size_t size); // tokenizer.json loaded, then encode + decode
int encode(const uint8_t* data, size_t size);         // text encoded + decoded by a real tokenizer
int detokenize(const uint8_t* data, size_t size);     // id lines parsed and decoded by a real tokenizer

// Loads the real tokenizers of encode/detokenize up front (libFuzzer's LLVMFuzzerInitialize), so that their
// load time does not count against the first input's timeout.
void warm_up();

// A scratch directory of this process (created once, removed at exit), and a file written into it.
const std::filesystem::path& scratch();
void put(const std::filesystem::path& p, const uint8_t* data, size_t size);
std::filesystem::path source_dir();  // the repository (testdata/)
std::filesystem::path shared_dir();  // ../shared (real tokenizers)

}  // namespace llmopt::fuzz
