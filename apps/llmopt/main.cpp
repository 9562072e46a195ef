// llmopt: quantize, prune, convert, inspect and run Hugging Face LLM checkpoints.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>

#include "apps/llmopt/command.h"
#include "lib/backend/backend.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/core/threads.h"

namespace llmopt::app {
std::vector<Command>& commands() {
  static std::vector<Command> c;
  return c;
}
}  // namespace llmopt::app

int main(int argc, char** argv) {
  using namespace llmopt;
  // Past a file-size limit (RLIMIT_FSIZE) write(2) fails with EFBIG, which the writers report as an error,
  // instead of the default SIGXFSZ killing the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"llmopt: quantize, prune, convert and run Hugging Face LLM checkpoints", "llmopt"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "llmopt 0.1.0");
  bool quiet = false, verbose = false;
  int threads = 0;
  std::string device = "cpu";
  app.add_flag("-q,--quiet", quiet, "no progress or informational output on stderr");
  app.add_flag("-v,--verbose", verbose, "debug output on stderr");
  app.add_option("-t,--threads", threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--device", device, "where models run: " + backend::available() + " (default cpu)");

  std::map<CLI::App*, std::function<int()>> runners;
  for (auto& c : app::commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.description);
    sub->fallthrough();
    runners[sub] = c.setup(*sub);
  }
  auto known = [&](const char* name) {
    for (auto& c : app::commands())
      if (c.name == name) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::string names;
    for (auto& c : app::commands()) names += (names.empty() ? "" : ", ") + c.name;
    std::fprintf(stderr, "llmopt: bad arguments: unknown subcommand '%s' (commands: %s)\n", argv[1], names.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "llmopt: bad arguments: %s (see llmopt --help)\n", msg.c_str());
    return 2;
  }
  try {
    backend::select(device);
  } catch (const Error& e) {
    std::fprintf(stderr, "llmopt: bad arguments: %s\n", e.what());
    return 2;
  }
  log::set_quiet(quiet);
  if (verbose) log::set_level(log::Level::debug);
  set_num_threads(threads);
  try {
    for (auto* sub : app.get_subcommands()) return runners.at(sub)();
  } catch (const Error& e) {
    std::fprintf(stderr, "llmopt: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {  // a path the OS rejects (too long, ...): bad input
    std::fprintf(stderr, "llmopt: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "llmopt: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmopt: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
