// Crash-safe outputs: quantize, prune and convert SIGKILLed partway through writing leave the destination as it
// was (absent, or the empty directory it was), only a temporary sibling that the next run removes, and the next
// run writes the same bytes as an uninterrupted one. A file-size limit (RLIMIT_FSIZE, a full disk's stand-in)
// gives one error line naming the output, exit code 1 and nothing at the destination.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "test_paths.h"

namespace fs = std::filesystem;
using llmopt::test::run_llmopt;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Starts the binary with stdout/stderr to files under `logs`; fsize_limit > 0 sets RLIMIT_FSIZE in the child.
pid_t spawn(const std::vector<std::string>& args, const fs::path& logs, rlim_t fsize_limit = 0) {
  const std::string out = (logs / "stdout").string(), err = (logs / "stderr").string();
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY), o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
        e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0), dup2(o, 1), dup2(e, 2);
    if (fsize_limit) {
      rlimit r{fsize_limit, fsize_limit};
      setrlimit(RLIMIT_FSIZE, &r);
    }
    std::string bin = llmopt::test::llmopt_bin().string();
    std::vector<std::string> copy = args;
    std::vector<char*> argv{bin.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// The temporary sibling ".NAME.tmp-PID-N" of `dst`, if there is one.
std::optional<fs::path> temp_sibling(const fs::path& dst) {
  const std::string stem = "." + dst.filename().string() + ".tmp-";
  for (const auto& e : fs::directory_iterator(dst.parent_path()))
    if (e.path().filename().string().rfind(stem, 0) == 0) return e.path();
  return std::nullopt;
}

// Bytes written so far under a temporary sibling (a file, or the files of a directory).
uint64_t bytes_under(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  uint64_t n = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

// Runs the command and SIGKILLs it as soon as its temporary sibling of `dst` holds data. false if the run
// finished before that could happen (too fast to catch).
bool kill_partway(const std::vector<std::string>& args, const fs::path& dst, const fs::path& logs) {
  const pid_t pid = spawn(args, logs);
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    auto tmp = temp_sibling(dst);
    if (tmp && bytes_under(*tmp) > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      INFO("stderr: " << slurp(logs / "stderr"));
      REQUIRE(WIFSIGNALED(status));
      return WTERMSIG(status) == SIGKILL;
    }
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::minutes(10));
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  INFO("stderr: " << slurp(logs / "stderr"));
  CHECK(WIFEXITED(status));  // finished (or failed) before the output appeared
  CHECK(WEXITSTATUS(status) == 0);
  return false;
}

// Every file under p (a file or a directory) by relative path, with its bytes.
std::map<std::string, std::string> contents(const fs::path& p) {
  std::map<std::string, std::string> m;
  if (fs::is_regular_file(p)) m[p.filename().string()] = slurp(p);
  else
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file()) m[fs::relative(e.path(), p).string()] = slurp(e.path());
  return m;
}

std::string model() { return llmopt::test::stories260k(); }
std::string calib() { return llmopt::test::tinystories_train(); }

// A command writing to `dst` (the last argument after -o is filled in per run).
struct Job {
  const char* name;
  std::vector<std::string> args;  // "{out}" stands for the destination
  const char* dst_name;
};

std::vector<std::string> with_out(const Job& j, const fs::path& out) {
  std::vector<std::string> a;
  for (const auto& s : j.args) a.push_back(s == "{out}" ? out.string() : s);
  return a;
}

const std::vector<Job>& jobs() {
  static const std::vector<Job> j = {
      {"quantize gptq", {"-q", "quantize", model(), "-o", "{out}", "--method", "gptq", "--bits", "4", "--group-size",
                         "32", "--format", "compressed-tensors", "--ragged-per-channel", "--calib", calib(),
                         "--nsamples", "8", "--seqlen", "64"}, "w4"},
      {"quantize gguf", {"-q", "quantize", model(), "-o", "{out}", "--method", "rtn", "--format", "gguf"}, "m.gguf"},
      {"prune sparsegpt", {"-q", "prune", model(), "-o", "{out}", "--method", "sparsegpt", "--sparsity", "0.5",
                           "--calib", calib(), "--nsamples", "8", "--seqlen", "64"}, "p50"},
      {"convert similarity", {"-q", "convert", (llmopt::test::shared_dir() / "models/stories260K-mha").string(), "-o",
                              "{out}", "--kv-heads", "4", "--grouping", "similarity", "--calib", calib(),
                              "--nsamples", "4", "--seqlen", "64"}, "gqa4"},
  };
  return j;
}

}  // namespace

TEST_CASE("SIGKILL partway through writing leaves no partial output; the next run cleans up") {
  for (const Job& job : jobs()) {
    SUBCASE(job.name) {
      const fs::path tmp = llmopt::test::temp_dir("crash_kill");
      // the uninterrupted run, for the bytes the rerun must reproduce
      fs::create_directory(tmp / "ref");
      const auto ref = run_llmopt(with_out(job, tmp / "ref" / job.dst_name));
      INFO("reference run stderr: " << ref.err);
      REQUIRE(ref.exit_code == 0);

      // Kill partway; a fast machine may finish a small job before the poll sees data, so allow retries.
      const bool dir_output = fs::is_directory(tmp / "ref" / job.dst_name);
      fs::path parent, dst;
      bool killed = false;
      for (int attempt = 0; attempt < 20 && !killed; ++attempt) {
        parent = tmp / ("run" + std::to_string(attempt));
        fs::create_directory(parent);
        dst = parent / job.dst_name;
        if (dir_output && attempt % 2) fs::create_directory(dst);  // an empty destination directory is allowed
        killed = kill_partway(with_out(job, dst), dst, tmp);
      }
      REQUIRE_MESSAGE(killed, "the job always finished before it could be killed");

      // the destination is as it was before the run: absent, or still the empty directory
      if (fs::exists(dst)) {
        CHECK(fs::is_directory(dst));
        CHECK(fs::is_empty(dst));
      }
      const auto leftover = temp_sibling(dst);
      REQUIRE(leftover.has_value());  // the kill really happened mid-write

      // the next run succeeds, removes the leftover and writes what an uninterrupted run writes
      const auto again = run_llmopt(with_out(job, dst));
      INFO("rerun stderr: " << again.err);
      REQUIRE(again.exit_code == 0);
      CHECK(!fs::exists(*leftover));
      CHECK(!temp_sibling(dst).has_value());
      CHECK(contents(dst) == contents(tmp / "ref" / job.dst_name));
    }
  }
}

TEST_CASE("a leftover of a live process is not touched") {
  // a concurrent writer's temporary sibling (our own pid is alive) must survive another run's cleanup
  const fs::path tmp = llmopt::test::temp_dir("crash_live");
  const fs::path live = tmp / (".m.gguf.tmp-" + std::to_string(getpid()) + "-0");
  std::ofstream(live) << "in progress";
  const auto r = run_llmopt(with_out(jobs()[1], tmp / "m.gguf"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(live));
  CHECK(fs::exists(tmp / "m.gguf"));
}

TEST_CASE("a file-size limit (full disk) gives one error line and no partial output") {
  for (const Job& job : jobs()) {
    SUBCASE(job.name) {
      const fs::path tmp = llmopt::test::temp_dir("crash_fsize");
      const fs::path parent = tmp / "out", dst = parent / job.dst_name;
      fs::create_directory(parent);
      const pid_t pid = spawn(with_out(job, dst), tmp, 64 * 1024);  // the model has ~1 MB of weights
      int status = 0;
      waitpid(pid, &status, 0);
      const std::string err = slurp(tmp / "stderr");
      INFO("stderr: " << err);
      REQUIRE(WIFEXITED(status));  // not killed by SIGXFSZ
      CHECK(WEXITSTATUS(status) == 1);
      CHECK(slurp(tmp / "stdout").empty());
      REQUIRE(!err.empty());
      CHECK(err.back() == '\n');
      CHECK(std::count(err.begin(), err.end(), '\n') == 1);
      CHECK(err.find(job.dst_name) != std::string::npos);  // names the output
      if (std::string(job.name) != "quantize gguf") CHECK(err.find("File too large") != std::string::npos);
      CHECK(fs::is_empty(parent));  // neither the destination nor a temporary sibling
    }
  }
}
