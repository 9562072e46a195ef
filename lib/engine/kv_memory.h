#pragma once
// The KV pool's size from `--kv-memory BYTES|FRACTION`.
#include <cstdint>
#include <string>

namespace llmopt::engine {

// Blocks of bytes_per_block that fit in `spec`: a byte count (digits, optionally with a suffix K, M, G
// or KiB, MiB, GiB, all powers of 1024) or a fraction in (0, 1] written with a decimal point (0.25, 1.0)
// of the memory available now (MemAvailable in /proc/meminfo). Error on a malformed spec or no block.
int64_t kv_blocks_for_memory(const std::string& spec, int64_t bytes_per_block);

// MemAvailable from /proc/meminfo in bytes (Error when it cannot be read).
int64_t available_memory_bytes();

}  // namespace llmopt::engine
