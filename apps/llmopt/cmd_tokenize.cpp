// llmopt tokenize DIR|MODEL.gguf [--add-special] [--split-special] [--json]   (text lines on stdin → ids)
// llmopt detokenize DIR|MODEL.gguf [--skip-special]                           (ids lines on stdin → text)
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "apps/llmopt/command.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/core/threads.h"
#include "lib/tokenizer/ids.h"
#include "lib/tokenizer/tokenizer.h"

namespace {

std::string read_stdin() {
  std::string s;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, stdin)) > 0;) s.append(buf, n);
  return s;
}

// Lines split on "\n" without the "\n"; a final "\n" does not start another line.
std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < s.size();) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) nl = s.size();
    lines.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

void write_stdout(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

}  // namespace

LLMOPT_COMMAND(
    "tokenize",
    "Encode text lines from stdin with DIR/tokenizer.json or a .gguf file's tokenizer; print one line of space-separated "
    "ids per input line",
    [](CLI::App& sub) -> std::function<int()> {
      struct Opts { std::string dir; bool add_special = false, split_special = false, json = false; };
      auto o = std::make_shared<Opts>();
      sub.add_option("DIR", o->dir, "directory with tokenizer.json (and optional tokenizer_config.json), or a .gguf file")
          ->required();
      sub.add_flag("--add-special", o->add_special, "add BOS/EOS as HF add_special_tokens=True (default: none)");
      sub.add_flag("--split-special", o->split_special,
                   "treat special tokens written in the text (e.g. <s>, <|im_end|>) as plain text; by default they "
                   "are matched, as HF tokenizers does (non-special added tokens are always matched)");
      sub.add_flag("--json", o->json, "print one JSON array holding one array of ids per input line, e.g. [[1,2],[]]");
      return [o] {
        using clock = std::chrono::steady_clock;
        auto ms = [](clock::time_point a) { return std::chrono::duration<double, std::milli>(clock::now() - a).count(); };
        auto cpu_ms = [](std::clock_t a) { return double(std::clock() - a) * 1000.0 / CLOCKS_PER_SEC; };
        auto t0 = clock::now();
        auto c0 = std::clock();
        auto tok = llmopt::tok::Tokenizer::load(o->dir);
        llmopt::log::debug("tokenize: loaded {} in {:.1f} ms (cpu {:.1f} ms)", o->dir, ms(t0), cpu_ms(c0));
        std::string text = read_stdin();
        auto lines = split_lines(text);
        std::vector<std::string> out(lines.size());
        std::atomic<int64_t> n_ids{0};
        auto t1 = clock::now();
        auto c1 = std::clock();
        llmopt::parallel_for(int64_t(lines.size()), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; i++) {
            auto ids = tok.encode(lines[i], o->add_special, !o->split_special);
            n_ids += int64_t(ids.size());
            out[i] = o->json ? fmt::format("[{}]", fmt::join(ids, ",")) : fmt::format("{}", fmt::join(ids, " "));
          }
        }, 64);
        llmopt::log::debug("tokenize: encoded {} lines, {} bytes, {} tokens in {:.1f} ms (cpu {:.1f} ms)", lines.size(),
                           text.size(), n_ids.load(), ms(t1), cpu_ms(c1));
        std::string all;
        if (o->json) all = fmt::format("[{}]\n", fmt::join(out, ","));
        else for (auto& l : out) all += l, all += '\n';
        write_stdout(all);
        return 0;
      };
    });

LLMOPT_COMMAND(
    "detokenize",
    "Decode lines of space-separated ids from stdin with DIR/tokenizer.json or a .gguf file's tokenizer; print one text "
    "line per input line",
    [](CLI::App& sub) -> std::function<int()> {
      struct Opts { std::string dir; bool skip_special = false; };
      auto o = std::make_shared<Opts>();
      sub.add_option("DIR", o->dir, "directory with tokenizer.json (and optional tokenizer_config.json), or a .gguf file")
          ->required();
      sub.add_flag("--skip-special", o->skip_special, "leave out special tokens (BOS, EOS, ...)");
      return [o] {
        auto tok = llmopt::tok::Tokenizer::load(o->dir);
        std::string text = read_stdin();
        auto lines = split_lines(text);
        std::string all;
        for (size_t i = 0; i < lines.size(); i++) {
          const auto ids = llmopt::tok::parse_id_line(lines[i], fmt::format("detokenize: stdin line {}", i + 1),
                                                      tok.vocab_size());
          all += tok.decode(ids, o->skip_special);
          all += '\n';
        }
        write_stdout(all);
        return 0;
      };
    });
