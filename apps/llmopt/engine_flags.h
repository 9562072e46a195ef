#pragma once
// The serving flags `generate` and `bench` share: KV pool size and block size, the scheduler's limits.
#include <CLI/CLI.hpp>

#include <string>

#include "lib/engine/generate.h"
#include "lib/engine/kv_memory.h"

namespace llmopt::app {

struct EngineFlags {
  std::string kv_memory;
  int64_t kv_blocks = 0, block_size = 16;
  engine::SchedulerOptions sched;
  bool no_prefix_caching = false;
  CLI::Option* kv_memory_opt = nullptr;
};

inline void add_engine_flags(CLI::App& sub, EngineFlags& f) {
  f.kv_memory_opt = sub.add_option("--kv-memory", f.kv_memory,
                                   "KV pool: bytes (e.g. 256MiB) or a fraction of available memory (e.g. 0.5)");
  sub.add_option("--kv-blocks", f.kv_blocks, "KV pool in blocks (default: room for --max-seqs of the longest request)")
      ->check(CLI::PositiveNumber)
      ->excludes(f.kv_memory_opt);
  sub.add_option("--block-size", f.block_size, "tokens per KV block (default 16)")->check(CLI::Range(1, 4096));
  sub.add_option("--max-seqs", f.sched.max_seqs, "sequences running at once (default 64)")->check(CLI::PositiveNumber);
  sub.add_option("--max-batched-tokens", f.sched.max_batched_tokens, "tokens per forward step (default 2048)")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--no-prefix-caching", f.no_prefix_caching, "do not reuse cached KV blocks of earlier prompts");
}

inline engine::EngineOptions engine_options(const EngineFlags& f, const model::Model& m) {
  engine::EngineOptions o;
  o.scheduler = f.sched;
  o.scheduler.prefix_caching = !f.no_prefix_caching;
  o.block_size = f.block_size;
  o.kv_blocks = f.kv_blocks;
  if (f.kv_memory_opt->count()) {
    const int64_t per_block = m.kv_format(f.block_size).bytes_per_token() * m.config().num_hidden_layers * f.block_size;
    o.kv_blocks = engine::kv_blocks_for_memory(f.kv_memory, per_block);
  }
  return o;
}

}  // namespace llmopt::app
