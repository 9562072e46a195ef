#!/usr/bin/env python3
"""llama.cpp's token ids for GGUF tokenizers (tests/tokenizer/test_gguf_tok.cpp), from its own `llama-tokenize`.

Files (GGUF tokenizers):
  smollm2      ../shared/models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf  (gpt2, pre "smollm")
  stories260K  models/stories260K exported by our writer: `llmopt quantize ... --format gguf` (llama / SentencePiece)
  llama3, qwen3, deepseek-v3  vocabulary-only GGUFs made here with the gguf package from ../shared/models/tokenizers/*
               (tokens in id order, added special tokens control, other added tokens user-defined, the merges;
               pre "llama-bpe", "qwen2", "deepseek-v3"); tests/tokenizer/test_gguf_tok.cpp builds the same file.
  llama3-gpt2, qwen3-default  the same with pre "gpt-2" and "default" (llama.cpp's other regex sets).
Corpora: every line of wiki.test.raw and of the TinyStories valid excerpt (split on "\\n", no trailing empty line).
Each corpus is tokenized in ONE llama-tokenize run (--ids --no-bos --no-escape; special tokens parsed): the lines are joined
with a control token (never in the text) between them, which llama.cpp partitions out before tokenizing, so each line
is tokenized on its own, exactly as a per-line call would (for SentencePiece the space prefix follows a special token
too); the output is split back on that token's id.
Writes testdata/tokenizer/gguf/<name>.<corpus>.bin, one record per line (the format of tokenizer_golden.py, bit 31
never set): u32 count, u64 FNV-1a-64 of the ids as int32 little-endian; <name>.head.json (full ids of the first 100
lines per corpus); cases.json (hand-picked strings, each in its own llama-tokenize run: with parse_special and
without, with the model's BOS).

With --hf DIR (DIR/<name>/tokenizer.json written by our write_hf_tokenizer: run the tokenizer tests with
LLMOPT_GOLDEN_HF_DIR=DIR first), also loads those files with HF `tokenizers` and counts the lines whose ids differ
from llama.cpp's; the counts go to testdata/tokenizer/gguf/hf_check.json.

Usage: python3 scripts/golden/gguf_tokenizer_golden.py [--llama-bin DIR] [--llmopt build/llmopt] [--hf DIR]
(llama.cpp from scripts/bench/build_llamacpp.sh; tokenizers==0.23.x for --hf)
"""
import argparse
import json
import pathlib
import struct
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "testdata" / "tokenizer" / "gguf"
HEAD = 100
CORPORA = {
    "wiki": "data/wikitext-2-raw/wiki.test.raw",
    "tinystories": "data/tinystories/tinystories_valid_excerpt.txt",
}
SEPARATOR = {"smollm2": ("<|endoftext|>", 0), "stories260K": ("</s>", 2), "llama3": ("<|end_of_text|>", 128001),
             "qwen3": ("<|endoftext|>", 151643), "deepseek-v3": ("<｜end▁of▁sentence｜>", 1),
             "llama3-gpt2": ("<|end_of_text|>", 128001), "qwen3-default": ("<|endoftext|>", 151643)}
# name: (tokenizer dir, pre type). The last two pair a vocabulary with another pre type, to check those regexes.
FROM_HF = {"llama3": ("llama3", "llama-bpe"), "qwen3": ("qwen3", "qwen2"), "deepseek-v3": ("deepseek-v3", "deepseek-v3"),
           "llama3-gpt2": ("llama3", "gpt-2"), "qwen3-default": ("qwen3", "default")}
CASES = [
    "", " ", "  ", "\n", "Hello world", " Hello  world ", "a\tb\r\nc", "   leading and trailing   ",
    "<|im_start|>user\nHi<|im_end|>\n", "<s>hi</s> <unk>", "x<|endoftext|>y", "I'M HERE, you'RE there, they'Ll",
    "1234567 3.14159 ٣٤٥ ½ ² 2nd", "Ünïcödé naïve café ﬁ Å e\u0301", "日本語のテキストと中文", "emoji 😀👍🏽 ok",
    "\u00a0nbsp\u2003em\u3000ideo", "tab\t\ttabs\n\nnewlines  \n", "a" * 300, "email@example.com https://x.y/z?q=1",
    "\u200b\u200d zero width", "\U00010348 gothic", "\x7f\x01 ctrl",
]


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_lines(path):
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def llama_tokenize(bin_dir, gguf, text, parse_special=True, bos=False):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
    args = [str(bin_dir / "llama-tokenize"), "-m", str(gguf), "-f", f.name, "--ids", "--no-escape", "--log-disable"]
    # (llama-tokenize parses special tokens unless told --no-parse-special)
    args += ([] if parse_special else ["--no-parse-special"]) + ([] if bos else ["--no-bos"])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    pathlib.Path(f.name).unlink()
    lists = [l for l in out.splitlines() if l.startswith("[")]
    assert len(lists) == 1, out[-2000:]
    return json.loads(lists[0])


def per_line_ids(bin_dir, gguf, name, lines):
    sep_text, sep_id = SEPARATOR[name]
    assert not any(sep_text in l for l in lines), f"{sep_text} occurs in the text"
    ids = llama_tokenize(bin_dir, gguf, sep_text.join(lines))
    out, cur = [], []
    for i in ids:
        if i == sep_id:
            out.append(cur)
            cur = []
        else:
            cur.append(i)
    out.append(cur)
    assert len(out) == len(lines), (len(out), len(lines))
    return out


def export_stories(llmopt, tmp):
    path = pathlib.Path(tmp) / "stories260K.gguf"
    subprocess.run([str(llmopt), "quantize", str(SHARED / "models/stories260K"), "--method", "rtn", "--format", "gguf",
                    "--bits", "8", "--sym", "--group-size", "32", "-o", str(path)], check=True, capture_output=True)
    return path


def gguf_from_hf(name, tok_dir, pre, tmp):
    """The vocabulary of ../shared/models/tokenizers/<tok_dir>/tokenizer.json as a vocabulary-only GGUF."""
    import gguf
    j = json.loads((SHARED / "models/tokenizers" / tok_dir / "tokenizer.json").read_text())
    pieces = {i: p for p, i in j["model"]["vocab"].items()}
    types = {i: 1 for i in pieces}
    for a in j["added_tokens"]:
        pieces[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    n = max(pieces) + 1
    tokens = [pieces.get(i, f"[PAD{i}]") for i in range(n)]
    ttypes = [types.get(i, 5) for i in range(n)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    path = pathlib.Path(tmp) / f"{name}.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    for k, v in [("context_length", 2048), ("embedding_length", 64), ("block_count", 1), ("feed_forward_length", 64),
                 ("attention.head_count", 1), ("attention.head_count_kv", 1)]:
        w.add_uint32(f"llama.{k}", v)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(ttypes)
    w.add_token_merges(merges)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", default="/work/llama.cpp/build/bin", type=pathlib.Path)
    ap.add_argument("--llmopt", default=ROOT / "build" / "llmopt", type=pathlib.Path)
    ap.add_argument("--hf", type=pathlib.Path)
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    corpora = {c: read_lines(SHARED / rel) for c, rel in CORPORA.items()}
    cases = {"strings": CASES, "files": {}}
    hf_check = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"smollm2": SHARED / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf",
                 "stories260K": export_stories(a.llmopt, tmp)}
        for name, (tok_dir, pre) in FROM_HF.items():
            files[name] = gguf_from_hf(name, tok_dir, pre, tmp)
        for name, gguf in files.items():
            head = {}
            hf = None
            if a.hf:
                from tokenizers import Tokenizer
                hf = Tokenizer.from_file(str(a.hf / name / "tokenizer.json"))
            for cname, lines in corpora.items():
                ids_list = per_line_ids(a.llama_bin, gguf, name, lines)
                rec = b"".join(struct.pack("<IQ", len(ids), fnv1a(struct.pack(f"<{len(ids)}i", *ids))) for ids in ids_list)
                (OUT / f"{name}.{cname}.bin").write_bytes(rec)
                head[cname] = ids_list[:HEAD]
                print(f"{name} {cname}: {len(lines)} lines, {sum(map(len, ids_list))} tokens")
                if hf is not None:
                    got = [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
                    bad = [i for i, (x, y) in enumerate(zip(got, ids_list)) if x != y]
                    hf_check[f"{name}.{cname}"] = {"lines": len(lines), "different": len(bad), "first": bad[:5]}
                    print(f"  HF tokenizers on our tokenizer.json: {len(bad)} lines differ from llama.cpp")
            if name not in FROM_HF:  # (diagnosis only; the large vocabularies keep just the hashes)
                (OUT / f"{name}.head.json").write_text(json.dumps(head, separators=(",", ":")) + "\n")
            cases["files"][name] = {
                "encode": [llama_tokenize(a.llama_bin, gguf, s) for s in CASES],
                "encode_no_parse_special": [llama_tokenize(a.llama_bin, gguf, s, parse_special=False) for s in CASES],
                "encode_bos": [llama_tokenize(a.llama_bin, gguf, s, bos=True) for s in CASES],
            }
    (OUT / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n")
    if a.hf:
        (OUT / "hf_check.json").write_text(json.dumps(hf_check, indent=1) + "\n")


if __name__ == "__main__":
    main()
