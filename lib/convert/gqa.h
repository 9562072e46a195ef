#pragma once
// MHA → GQA (and GQA → fewer groups) by mean-pooling the K and V projection heads of each group
// (Ainslie et al. 2023, "GQA", §3). Groups are adjacent heads, or (beyond the paper) heads whose K/V
// outputs on calibration text are most alike; then the query heads are permuted (q_proj rows, o_proj
// columns) so that each group's query heads sit with its pooled KV head, which leaves the computed
// function unchanged by itself.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/model/checkpoint.h"

namespace llmopt::convert {

enum class Grouping { Adjacent, Similarity };
Grouping parse_grouping(const std::string& s);  // "adjacent" | "similarity"; Error names --grouping

// One layer: groups[g] = the source KV heads pooled into new KV head g (equal sizes, ascending).
using LayerGroups = std::vector<std::vector<int64_t>>;
// Per layer.
using KvGroups = std::vector<LayerGroups>;

// Error (one line) unless G is a valid reduction of c's KV heads: 0 < G < H_kv, G | H_kv, not MLA,
// not quantized.
void check_gqa_target(const model::ModelConfig& c, int64_t G);

// Heads j·s .. j·s+s-1 form group j (s = H_kv / G), in every layer.
KvGroups adjacent_groups(const model::ModelConfig& c, int64_t G);

// Per layer, the H_kv × H_kv Gram matrices of the KV heads' outputs over the calibration tokens:
// k[l][a·H_kv + b] = Σ_t ⟨K_a(t), K_b(t)⟩ (K before RoPE: RoPE rotates every head alike, so distances
// between heads are the same after it), and v likewise.
struct HeadStats {
  int64_t heads = 0, tokens = 0;
  std::vector<std::vector<double>> k, v;
};
// Runs the calibration runner (lib/calib) over the windows (equal lengths) and observes each layer's k/v input.
HeadStats collect_head_stats(const model::Checkpoint& ck, const std::vector<std::vector<int32_t>>& samples);

// The combined metric of one layer: K and V Gram matrices each divided by their mean per-head energy.
std::vector<double> head_metric(const HeadStats& s, int layer);
// Relative pooling error of a grouping under metric m (H×H): Σ_g Σ_{j∈g} ‖X_j − mean_g X‖² / Σ_j ‖X_j‖².
double pooling_error(std::span<const double> m, int64_t H, const LayerGroups& groups);
// Equal-size groups minimising the pooling error: greedy growth from each unassigned head, then pairwise
// swaps between groups until none helps (started from both the greedy and the adjacent grouping; the better
// wins, so it is never worse than adjacent). Canonical order: members ascending, groups by first member.
LayerGroups similarity_groups(std::span<const double> m, int64_t H, int64_t G);

// Writes the converted checkpoint to `out` (absent or empty) through calib::OutputDir, as quantize and prune
// write theirs: the safetensors (one tensor in memory at a time), config.json with num_key_value_heads = the
// group count (every other field verbatim, in its order), the tokenizer and generation files. `groups` must
// partition each layer's KV heads into equal groups; size-1 groups give a pure head permutation (a
// function-preserving re-ordering).
void write_grouped_checkpoint(const model::Checkpoint& src, const KvGroups& groups, const std::filesystem::path& out,
                              uint64_t max_shard_bytes);

struct GqaOptions {
  int64_t kv_heads = 0;
  Grouping grouping = Grouping::Adjacent;
  std::vector<std::vector<int32_t>> calib;  // token windows, calib::calibration_windows (similarity only)
  uint64_t max_shard_bytes = 5'000'000'000;
};

struct GqaReport {
  int64_t kv_heads_before = 0, kv_heads_after = 0;
  int64_t kv_bytes_per_token_before = 0, kv_bytes_per_token_after = 0;  // at the checkpoint's dtype size
  KvGroups groups;
  int64_t calib_tokens = 0;
  std::vector<double> error_adjacent, error_chosen;  // per layer, similarity only
  nlohmann::json to_json() const;
};

// The whole command: validate, plan the groups, write tensors + config.json (num_key_value_heads = G, every
// other field verbatim) + the tokenizer/generation files into a temporary sibling of `out`, then rename it
// into place. On any Error nothing is left behind.
GqaReport convert_gqa(const std::filesystem::path& in, const std::filesystem::path& out, const GqaOptions& opts);

}  // namespace llmopt::convert
