#pragma once
// Subcommand registry: each apps/llmopt/cmd_*.cpp registers itself with LLMOPT_COMMAND, so main.cpp
// never changes when a subcommand is added. A subcommand parses flags, calls lib/, prints results.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace llmopt::app {

// setup() adds the subcommand's flags to `sub` and returns the function that runs it (exit code).
using Setup = std::function<std::function<int()>(CLI::App& sub)>;

struct Command {
  std::string name, description;
  Setup setup;
};

std::vector<Command>& commands();

struct Register {
  Register(std::string name, std::string description, Setup setup) {
    commands().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace llmopt::app

#define LLMOPT_CAT2(a, b) a##b
#define LLMOPT_CAT(a, b) LLMOPT_CAT2(a, b)
#define LLMOPT_COMMAND(name, description, ...) \
  static ::llmopt::app::Register LLMOPT_CAT(llmopt_command_, __LINE__)(name, description, __VA_ARGS__)
