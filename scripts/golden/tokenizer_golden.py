#!/usr/bin/env python3
"""Reference tokenizations for tests/tokenizer, made with the Hugging Face `tokenizers` package.

For each of the five tokenizers in ../shared/models and each corpus line (the file split on "\\n",
the "\\n" not included, no trailing empty line), writes testdata/tokenizer/<tok>.<corpus>.bin:
one record per line, little-endian:
    u32  count | (1 << 31 if decode(ids) != line)
    u64  FNV-1a-64 over the ids as int32 little-endian bytes
    u64  FNV-1a-64 over the UTF-8 bytes of decode(ids)   -- only when bit 31 is set
Lines are encoded with add_special_tokens=False (special/added tokens in the text ARE matched, the
`tokenizers` default) and decoded with skip_special_tokens=False.
Also writes testdata/tokenizer/<tok>.head.json (full ids of the first HEAD lines of each corpus, for
diagnosis) and testdata/tokenizer/cases.json (hand-picked strings: special tokens, Unicode edge cases,
add_special_tokens=True, encode_special_tokens=True, skip_special_tokens=True).

Usage: python3 scripts/golden/tokenizer_golden.py   (from the repository root; tokenizers==0.23.x)
"""
import json
import pathlib
import struct

import tokenizers
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "testdata" / "tokenizer"
HEAD = 100

TOKENIZERS = {
    "stories260K": "models/stories260K",
    "llama2-tokenizer-32k": "models/llama2-tokenizer-32k",
    "llama3": "models/tokenizers/llama3",
    "qwen3": "models/tokenizers/qwen3",
    "deepseek-v3": "models/tokenizers/deepseek-v3",
}
CORPORA = {
    "wiki": "data/wikitext-2-raw/wiki.test.raw",
    "tinystories": "data/tinystories/tinystories_valid_excerpt.txt",
}

CASES = [
    "", " ", "  ", "\n", "Hello world", " Hello  world ", "a\tb\r\nc", "   leading and trailing   ",
    "<s>hi</s> <unk>", "x<unk>y", "<|begin_of_text|>Hi<|end_of_text|>", "<|endoftext|> <|im_start|>user",
    "<think>ok</think>", "<｜begin▁of▁sentence｜>Hi", "I'M HERE, you'RE there, they'Ll", "1234567 3.14159 ٣٤٥",
    "Ünïcödé naïve café ﬁ Å (A+ring) e\u0301", "日本語のテキストと中文", "emoji 😀👍🏽 ok", "\u00a0nbsp\u2003em\u3000ideo",
    "tab\t\ttabs\n\nnewlines  \n", "ﬀ ǅ ẞ ſ K", "a" * 300, "ab " * 50, "Ǆemail@example.com https://x.y/z?q=1",
    "\u200b\u200d zero width", "\U00010348 gothic", "\x7f\x01 ctrl",
]


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def ids_bytes(ids):
    return struct.pack(f"<{len(ids)}i", *ids)


def read_lines(path):
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    corpora = {name: read_lines(SHARED / rel) for name, rel in CORPORA.items()}
    cases = {"tokenizers_version": tokenizers.__version__, "strings": CASES, "tokenizers": {}}
    for tname, rel in TOKENIZERS.items():
        tok = Tokenizer.from_file(str(SHARED / rel / "tokenizer.json"))
        head = {}
        for cname, lines in corpora.items():
            encs = tok.encode_batch(lines, add_special_tokens=False)
            ids_list = [e.ids for e in encs]
            decoded = tok.decode_batch(ids_list, skip_special_tokens=False)
            rec = bytearray()
            nonrt = 0
            for line, ids, dec in zip(lines, ids_list, decoded):
                rt = dec == line
                nonrt += not rt
                rec += struct.pack("<IQ", len(ids) | (0 if rt else 1 << 31), fnv1a(ids_bytes(ids)))
                if not rt:
                    rec += struct.pack("<Q", fnv1a(dec.encode("utf-8")))
            (OUT / f"{tname}.{cname}.bin").write_bytes(bytes(rec))
            head[cname] = ids_list[:HEAD]
            print(f"{tname} {cname}: {len(lines)} lines, {sum(map(len, ids_list))} tokens, {nonrt} lines where HF decode != text")
        (OUT / f"{tname}.head.json").write_text(json.dumps(head, separators=(",", ":")) + "\n")

        entry = {"vocab_size": tok.get_vocab_size(with_added_tokens=True), "encode": [], "encode_split_special": [],
                 "encode_add_special": [], "decode": [], "decode_skip_special": []}
        for s in CASES:
            ids = tok.encode(s, add_special_tokens=False).ids
            entry["encode"].append(ids)
            entry["encode_add_special"].append(tok.encode(s, add_special_tokens=True).ids)
            entry["decode"].append(tok.decode(ids, skip_special_tokens=False))
            entry["decode_skip_special"].append(tok.decode(ids, skip_special_tokens=True))
        tok.encode_special_tokens = True
        for s in CASES:
            entry["encode_split_special"].append(tok.encode(s, add_special_tokens=False).ids)
        cases["tokenizers"][tname] = entry
    (OUT / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n")


if __name__ == "__main__":
    main()
