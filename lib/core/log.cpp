#include "lib/core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "lib/core/clock.h"

namespace llmopt::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::atomic<bool> g_quiet{false};
std::mutex g_mu;
}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }
void set_quiet(bool q) {
  g_quiet = q;
  if (q && g_level < Level::warn) g_level = Level::warn;
}
bool quiet() { return g_quiet; }

void write(Level l, std::string_view msg) {
  static const char* prefix[] = {"debug: ", "", "warning: ", "error: ", ""};
  std::lock_guard lock(g_mu);
  std::fprintf(stderr, "%s%.*s\n", prefix[int(l)], int(msg.size()), msg.data());
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), active_(!g_quiet && isatty(2)), start_(now_s()) {}
Progress::~Progress() { finish(); }

void Progress::update(int64_t done) {
  if (!active_ || total_ <= 0) return;
  int64_t pct = done * 100 / total_;
  if (pct == last_drawn_) return;
  last_drawn_ = pct;
  int width = 30, fill = int(done * width / total_);
  std::lock_guard lock(g_mu);
  std::fprintf(stderr, "\r%s [%.*s%*s] %3lld%% %.1fs", label_.c_str(), fill,
               "##############################", width - fill, "", (long long)pct, now_s() - start_);
  std::fflush(stderr);
}

void Progress::finish() {
  if (!active_ || finished_) return;
  finished_ = true;
  update(total_);
  std::lock_guard lock(g_mu);
  std::fputc('\n', stderr);
}

}  // namespace llmopt::log
