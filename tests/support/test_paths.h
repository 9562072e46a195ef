#pragma once
// Where tests find the repository, the shared real models and data, and the built binary.
#include <filesystem>
#include <string>
#include <vector>

namespace llmopt::test {
std::filesystem::path source_dir();   // repository root
std::filesystem::path shared_dir();   // ../shared (real checkpoints and text; never copied in)
std::filesystem::path testdata_dir(); // testdata/ (committed golden references)
std::filesystem::path llmopt_bin();   // the built `llmopt` binary
std::filesystem::path temp_dir(const std::string& tag);  // fresh empty directory under the build's tmp

// The real checkpoint and texts most tests use (under shared_dir()).
std::string stories260k();        // models/stories260K
std::string tinystories_train();  // data/tinystories/tinystories_train_excerpt.txt (calibration)
std::string tinystories_valid();  // data/tinystories/tinystories_valid_excerpt.txt (evaluation)
size_t count_lines(const std::string& s);  // number of '\n'

struct RunResult { int exit_code; int signal; std::string out, err; };
// Runs the binary with args (no shell), feeding `stdin_text`; captures stdout and stderr.
RunResult run_llmopt(const std::vector<std::string>& args, const std::string& stdin_text = "");
}  // namespace llmopt::test
