#pragma once
// The only way lib/ talks to the user: leveled messages and progress bars on stderr.
// Progress is drawn only when stderr is a terminal and not --quiet.
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace llmopt::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, silent = 4 };

void set_level(Level level);
Level level();
void set_quiet(bool quiet);  // --quiet: only warnings and errors, no progress
bool quiet();

void write(Level level, std::string_view msg);

template <typename... A> void info(fmt::format_string<A...> f, A&&... a) {
  if (level() <= Level::info) write(Level::info, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A> void warn(fmt::format_string<A...> f, A&&... a) {
  if (level() <= Level::warn) write(Level::warn, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A> void debug(fmt::format_string<A...> f, A&&... a) {
  if (level() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<A>(a)...));
}

// A progress bar over `total` units; no output unless stderr is an interactive terminal.
class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void update(int64_t done);
  void finish();
 private:
  std::string label_;
  int64_t total_, last_drawn_ = -1;
  bool active_, finished_ = false;
  double start_;
};

}  // namespace llmopt::log
