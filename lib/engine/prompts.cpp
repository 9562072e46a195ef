#include "lib/engine/prompts.h"

#include <algorithm>
#include <array>

#include "lib/core/error.h"
#include "lib/core/json.h"

namespace llmopt::engine {
namespace {

constexpr std::array<std::string_view, 10> kFields = {"prompt", "ids",   "id",   "max_new_tokens", "temperature",
                                                      "top_k",  "top_p", "seed", "stop",           "n"};

// The stop field: a string, or an array of strings (stop texts) and integers (stop token ids).
void read_stop(const nlohmann::json& v, Request& r) {
  if (v.is_string()) return r.stop.push_back(v.get<std::string>());
  for (const auto& e : json_array(v, "stop")) {
    if (e.is_string()) r.stop.push_back(e.get<std::string>());
    else r.stop_ids.push_back(int32_t(json_integer(e, "stop", 0, INT32_MAX)));
  }
}

// Fills pl from one JSON line; Error on anything malformed.
// The ids of a text prompt (Error without a tokenizer).
std::vector<int32_t> encode(const tok::Tokenizer* tk, const model::ModelConfig& c, const std::string& text) {
  if (!tk) fail("a text prompt needs the model's tokenizer.json (give token ids: {{\"ids\": [...]}})");
  return prompt_ids(*tk, c, text);
}

void read_json_line(std::string_view line, const tok::Tokenizer* tk, const model::ModelConfig& c, PromptLine& pl) {
  const nlohmann::json j = parse_json(line, "JSON line");
  const JsonObject o(j, "JSON line");
  for (const auto& [k, v] : j.items())
    if (std::find(kFields.begin(), kFields.end(), k) == kFields.end())
      fail("unknown field '{}' (fields: prompt, ids, id, max_new_tokens, temperature, top_k, top_p, seed, stop, n)", k);
  if (o.has("prompt") == o.has("ids")) fail("give exactly one of 'prompt' and 'ids'");
  Request& r = pl.request;
  if (o.has("ids")) {
    r.prompt.clear();
    for (const auto& e : o.array("ids")) r.prompt.push_back(int32_t(json_integer(e, "ids", INT32_MIN, INT32_MAX)));
    if (r.prompt.empty()) fail("empty prompt: 'ids' has no tokens");
    for (int32_t t : r.prompt)
      if (t < 0 || t >= c.vocab_size) fail("token id {} outside the vocabulary [0, {})", t, c.vocab_size);
    if (tk) pl.prompt = tk->decode(r.prompt, true);
  } else {
    pl.prompt = o.string("prompt");
    r.prompt = encode(tk, c, pl.prompt);
  }
  if (o.has("id")) {
    if (!j["id"].is_string() && !j["id"].is_number_integer()) fail("id must be a string or an integer, got {}", json_kind(j["id"]));
    pl.id = j["id"];
  }
  r.max_new_tokens = o.integer_or("max_new_tokens", r.max_new_tokens, 0);
  r.sampling.temperature = float(o.number_or("temperature", r.sampling.temperature));
  r.sampling.top_k = o.integer_or("top_k", r.sampling.top_k, 0);
  r.sampling.top_p = float(o.number_or("top_p", r.sampling.top_p));
  r.seed = uint64_t(o.integer_or("seed", int64_t(r.seed), 0));
  r.n = o.integer_or("n", r.n, 1);
  if (o.has("stop")) read_stop(j["stop"], r);
}

}  // namespace

std::vector<PromptLine> parse_prompts(std::string_view text, const Request& defaults, const tok::Tokenizer* tk,
                                      const model::ModelConfig& c) {
  std::vector<PromptLine> out;
  std::vector<int32_t> stops;
  if (tk) stops = default_stop_ids(*tk, c);
  else
    for (int64_t e : c.eos_token_ids) stops.push_back(int32_t(e));
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    PromptLine pl;
    pl.id = out.size();
    pl.request = defaults;
    const size_t first = line.find_first_not_of(" \t");
    try {
      if (first != std::string_view::npos && line[first] == '{') {
        read_json_line(line, tk, c, pl);
      } else {
        pl.prompt = std::string(line);
        pl.request.prompt = encode(tk, c, pl.prompt);
      }
    } catch (const Error& e) {
      pl.error = e.what();
    }
    for (int32_t s : stops)
      if (std::find(pl.request.stop_ids.begin(), pl.request.stop_ids.end(), s) == pl.request.stop_ids.end())
        pl.request.stop_ids.push_back(s);
    out.push_back(std::move(pl));
  }
  return out;
}

}  // namespace llmopt::engine
