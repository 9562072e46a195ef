#include "lib/engine/kv_memory.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "lib/core/error.h"

namespace llmopt::engine {

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string key;
    int64_t kb = 0;
    if (ls >> key >> kb && key == "MemAvailable:") return kb * 1024;
  }
  fail("--kv-memory: a fraction needs MemAvailable from /proc/meminfo, which cannot be read");
}

int64_t kv_blocks_for_memory(const std::string& spec, int64_t bytes_per_block) {
  const auto bad = [&] {
    fail("--kv-memory: '{}' is neither a byte count (e.g. 268435456, 256MiB) nor a fraction in (0, 1] (e.g. 0.5)", spec);
  };
  size_t i = 0;
  while (i < spec.size() && (std::isdigit(static_cast<unsigned char>(spec[i])) || spec[i] == '.')) ++i;
  const std::string num = spec.substr(0, i), unit = spec.substr(i);
  if (num.empty() || num.size() > 18 || std::count(num.begin(), num.end(), '.') > 1) bad();
  double bytes = 0;
  if (num.find('.') != std::string::npos) {
    const double f = std::stod(num);
    if (!unit.empty() || !(f > 0 && f <= 1)) bad();
    bytes = f * double(available_memory_bytes());
  } else {
    double scale = 1;
    if (unit == "K" || unit == "KiB") scale = 1024.0;
    else if (unit == "M" || unit == "MiB") scale = 1024.0 * 1024;
    else if (unit == "G" || unit == "GiB") scale = 1024.0 * 1024 * 1024;
    else if (!unit.empty()) bad();
    bytes = std::stod(num) * scale;
  }
  const double blocks = std::floor(bytes / double(bytes_per_block));
  if (blocks < 1)
    fail("--kv-memory {}: {:.0f} bytes hold no KV block of {} bytes", spec, bytes, bytes_per_block);
  if (blocks > 2e9) fail("--kv-memory {}: {:.0f} blocks is more than the pool can index", spec, blocks);
  return int64_t(blocks);
}

}  // namespace llmopt::engine
