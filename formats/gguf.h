#pragma once
// GGUF v3 writer (the llama.cpp file format) with ggml's F32/F16/Q8_0/Q4_0/Q4_1 encodings, plus the llama
// architecture and SentencePiece tokenizer metadata llama.cpp needs to load an exported HF Llama model.
// File: "GGUF" u32 version=3, u64 n_tensors, u64 n_kv, KV pairs (u64-length string key, u32 type, value),
// tensor infos (name, u32 n_dims, u64 ne[] innermost first, u32 ggml type, u64 offset into the data),
// zero padding to `alignment`, then each tensor's data padded to `alignment`. All little-endian.
// Types and block layouts: formats/gguf_blocks.h; the reader: formats/gguf_read.h.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/gguf_blocks.h"

namespace llmopt::gguf {

// A type the writer encodes, by name (case-insensitive): F32, F16, Q8_0, Q4_0, Q4_1; Error for anything else.
Type type_from_name(const std::string& s);

// The type llama.cpp's converter would store a tensor in when `want` is asked for: F32 for 1-D tensors
// (norms), F16 when a quantized type's block does not divide the row (e.g. ffn_down with in = 172).
Type pick_type(Type want, const std::vector<int64_t>& shape);

// llama_ftype for general.file_type of a file whose bulk is in `t` (Q8_0 is 7, not 8).
uint32_t file_type(Type t);

// GGUF metadata: an ordered key list; setting an existing key replaces its value in place.
class Metadata {
 public:
  enum class VType : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };
  void set_u32(const std::string& k, uint32_t v);
  void set_i32(const std::string& k, int32_t v);
  void set_u64(const std::string& k, uint64_t v);
  void set_f32(const std::string& k, float v);
  void set_bool(const std::string& k, bool v);
  void set_str(const std::string& k, const std::string& v);
  void set_str_array(const std::string& k, const std::vector<std::string>& v);
  void set_f32_array(const std::string& k, const std::vector<float>& v);
  void set_i32_array(const std::string& k, const std::vector<int32_t>& v);
  bool has(const std::string& k) const;
  size_t size() const { return kv_.size(); }
  std::string encode() const;  // the KV section bytes
  std::vector<std::string> keys() const;

 private:
  void put(const std::string& k, std::string typed_value);
  std::vector<std::pair<std::string, std::string>> kv_;  // key, (u32 type + value) bytes
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // row-major, outermost first ([rows, cols] of a linear); stored reversed
  Type type = Type::F32;
  size_t nbytes() const;
};

// Streaming writer: every tensor is declared up front, then written once each, in any order, at most one
// in memory at a time; finish() checks all were written and renames the temporary sibling into place.
// Destroying an unfinished Writer removes the temporary file. general.alignment is added to `meta`
// (alignment 32 unless the caller set it).
class Writer {
 public:
  Writer(const std::filesystem::path& path, Metadata meta, std::vector<TensorSpec> specs);
  ~Writer();
  void write(const std::string& name, const void* bytes, size_t nbytes);  // already encoded
  void write_f32(const std::string& name, const float* x, size_t n);     // encoded here to the spec's type
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Llama export ----------------------------------------------------------------------------------

// HF tensor name -> GGUF name ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight",
// "model.embed_tokens.weight" -> "token_embd.weight", "lm_head.weight" -> "output.weight", ...);
// "" for names llama.cpp has no use for (rotary_emb.inv_freq).
std::string llama_tensor_name(const std::string& hf_name);
// The inverse: GGUF name -> HF name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"), ""
// for a name the table does not know. Both directions read one table (gguf.cpp).
std::string hf_tensor_name(const std::string& gguf_name);
std::string gguf_tensor_name(const std::string& hf_name);  // as llama_tensor_name, "" for an unknown name

// HF q_proj/k_proj rows are in rotate_half order (per head: all real parts, then all imaginary parts);
// llama.cpp rotates interleaved pairs. dst row h*hd + 2j + t = src row h*hd + t*hd/2 + j
// (convert_hf_to_gguf's LlamaModel.permute). n_head: attention heads for q, KV heads for k.
void permute_rope_rows(const float* src, float* dst, int64_t rows, int64_t cols, int n_head);
// The inverse, row by row: HF row r of such a weight (or bias) is GGUF row rope_gguf_row(r, rows, n_head).
// Rows are independent, so a block-quantized tensor is un-permuted by moving whole rows of blocks.
// (llama.cpp permutes for its `llama` architecture only; qwen2/qwen3 rotate in HF order.)
int64_t rope_gguf_row(int64_t r, int64_t rows, int n_head);

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama_token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
};
// Pieces, scores and types from a SentencePiece tokenizer.model (protobuf ModelProto, fields 1/1,2,3).
Vocab read_sentencepiece(const std::filesystem::path& model_file);
// The vocabulary convert_hf_to_gguf writes for a llama model dir: tokenizer.model when present (padded to
// config vocab_size with [PADi], added tokens from tokenizer_config.json's added_tokens_decoder). With only
// a BPE tokenizer.json, tokens come in id order, <0xXX> are byte tokens, special added tokens control, and
// the scores follow SentencePiece BPE's convention (normal piece i scores -(i - first normal id); 0 else),
// which gives back tokenizer.model's scores for stories260K. (llama.cpp's own converter writes -1000 for
// every token there, which makes its SPM tokenizer merge in the wrong order.)
Vocab llama_vocab(const std::filesystem::path& model_dir);

// All metadata for a llama-family HF dir (config.json, tokenizer files): general.*, llama.* hyper-parameters,
// general.file_type / quantization_version, tokenizer.ggml.*. Errors name the file and key.
Metadata llama_metadata(const std::filesystem::path& model_dir, Type bulk_type);

// A whole dense HF llama checkpoint (any float dtype) to one GGUF file: tensors in sorted HF-name order,
// renamed, q/k rows permuted, each stored as pick_type(choose(gguf_name, shape)) where `choose` defaults
// to `bulk_type` for every tensor. Written atomically.
using TypeChooser = std::function<Type(const std::string& gguf_name, const std::vector<int64_t>& shape)>;
void export_llama(const std::filesystem::path& model_dir, const std::filesystem::path& out, Type bulk_type,
                  const TypeChooser& choose = {});

}  // namespace llmopt::gguf
