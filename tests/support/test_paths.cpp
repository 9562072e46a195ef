#include "test_paths.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

namespace llmopt::test {
namespace fs = std::filesystem;

fs::path source_dir() { return LLMOPT_SOURCE_DIR; }
fs::path shared_dir() { return fs::path(LLMOPT_SHARED_DIR).lexically_normal(); }
fs::path testdata_dir() { return source_dir() / "testdata"; }
fs::path llmopt_bin() { return LLMOPT_BIN; }

std::string stories260k() { return (shared_dir() / "models/stories260K").string(); }
std::string tinystories_train() { return (shared_dir() / "data/tinystories/tinystories_train_excerpt.txt").string(); }
std::string tinystories_valid() { return (shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt").string(); }
size_t count_lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

fs::path temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() /
               ("llmopt-test-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

RunResult run_llmopt(const std::vector<std::string>& args, const std::string& stdin_text) {
  int in[2], out[2], err[2];
  if (pipe(in) || pipe(out) || pipe(err)) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in[0], 0); dup2(out[1], 1); dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    std::vector<char*> argv;
    std::string bin = llmopt_bin().string();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(in[0]); close(out[1]); close(err[1]);
  signal(SIGPIPE, SIG_IGN);
  RunResult r{0, 0, {}, {}};
  size_t written = 0;
  int in_fd = in[1];
  if (stdin_text.empty()) { close(in_fd); in_fd = -1; }
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out[0], POLLIN, 0};
    if (err_open) fds[n++] = {err[0], POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (poll(fds, n, -1) < 0) break;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += size_t(w);
        if (w <= 0 || written == stdin_text.size()) { close(in_fd); in_fd = -1; }
        continue;
      }
      ssize_t k = read(fds[i].fd, buf, sizeof buf);
      if (k <= 0) {
        if (fds[i].fd == out[0]) out_open = false; else err_open = false;
        continue;
      }
      (fds[i].fd == out[0] ? r.out : r.err).append(buf, size_t(k));
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out[0]); close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) { r.signal = WTERMSIG(status); r.exit_code = 128 + r.signal; }
  return r;
}
}  // namespace llmopt::test
