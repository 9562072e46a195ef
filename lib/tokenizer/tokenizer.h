#pragma once
// Hugging Face `tokenizer.json` encode/decode, id-for-id identical to the `tokenizers` library
// (checked against it on wikitext-2 and TinyStories for five real tokenizers, see tests/tokenizer).
//
// Pipeline (as in tokenizers): split the text on added tokens (leftmost-longest; tokens with
// normalized=false on the raw text, then normalized=true ones on the normalized pieces) → normalizer
// (Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents, BertNormalizer, Sequence) →
// pre-tokenizer (Split regex via PCRE2 JIT or string, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit,
// Punctuation, CharDelimiterSplit, BertPreTokenizer, Sequence) → BPE per word (priority queue over merge ranks,
// byte_fallback, ignore_merges, per-thread word cache) → post-processor (TemplateProcessing) when add_special.
// Decoders: Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace, Sequence.
// GGUF tokenizers (tokenizer.ggml.*) become the same pipeline, written out as tokenizer.json (gguf_vocab.cpp).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmopt::gguf { class File; }

namespace llmopt::tok {
namespace detail { struct TokenizerSpec; }

class Tokenizer {
 public:
  // A directory: reads dir/tokenizer.json and (optional) dir/tokenizer_config.json. A .gguf file: from_gguf.
  // Error naming the file on bad input.
  static Tokenizer load(const std::filesystem::path& path);
  // From a GGUF file's tokenizer.ggml.* metadata, with llama.cpp's ids: model "gpt2" (byte-level BPE with the
  // pre-tokenizer regexes of tokenizer.ggml.pre) or "llama" (SentencePiece BPE by scores, byte fallback).
  // Built as the tokenizer.json that write_hf_tokenizer writes. Error naming an unknown model or pre type.
  static Tokenizer from_gguf(const gguf::File& f);
  static Tokenizer from_spec(detail::TokenizerSpec& spec);  // the one builder (load and from_gguf use it)

  // add_special: add BOS/EOS as HF add_special_tokens=True does: the TemplateProcessing post-processor of
  //   tokenizer.json; when tokenizer.json has none (ByteLevel/null post-processor) but tokenizer_config.json
  //   sets add_bos_token / add_eos_token, those are honoured (transformers 4.x LlamaTokenizerFast; deepseek-v3).
  // parse_special: match special added tokens ("<s>", "<|im_end|>", ...) written in the text, as HF does by
  //   default; false = treat them as plain text (HF encode_special_tokens=True / split_special_tokens).
  //   Non-special added tokens are always matched. Invalid UTF-8 in text is replaced by U+FFFD first.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false, bool parse_special = true) const;
  // Unknown ids are dropped (as HF does); invalid UTF-8 from byte tokens becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t bos_id() const;      // -1 if none
  int32_t eos_id() const;      // -1 if none
  bool add_bos() const;        // does encode(.., add_special=true) start with BOS
  int64_t vocab_size() const;  // max id + 1 over the model vocab and added tokens
  std::string id_to_piece(int32_t id) const;  // token string as written in tokenizer.json; "" if unknown
  std::int32_t piece_to_id(std::string_view piece) const;  // -1 if unknown
  bool is_special(int32_t id) const;          // an added token with special=true
  const std::string& chat_template() const;   // tokenizer_config.json's (or the GGUF's); "" if none

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;  // immutable after load: copies share it; const calls are thread-safe
};

// Writes dir/tokenizer.json and dir/tokenizer_config.json (with the chat template, BOS/EOS, add_bos_token) for
// the tokenizer of a GGUF file, each atomically: HF `tokenizers` and Tokenizer::load(dir) read them with the ids
// of llama.cpp (e.g. SmolLM2's "smollm" pre type: the digit split before the byte-level regex).
void write_hf_tokenizer(const gguf::File& f, const std::filesystem::path& dir);

}  // namespace llmopt::tok
