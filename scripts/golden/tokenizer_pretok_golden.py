#!/usr/bin/env python3
"""Reference tokenizations for the normalizers and pre-tokenizers of tokenizer.json (tests/tokenizer/test_pretok.cpp),
made with the Hugging Face `tokenizers` package.

For each configuration below, a small BPE is trained (tokenizers' own BpeTrainer, vocab 600) on the TinyStories
train excerpt with that normalizer / pre-tokenizer / decoder, and saved as testdata/tokenizer/pretok/<name>/tokenizer.json
(byte_fallback configurations get the 256 <0xXX> tokens appended). Then, per configuration:
  <name>/lines.bin   one u32 per line of wiki.test.raw, then of the TinyStories valid excerpt (the file split on
                     "\\n", no trailing empty line): the low 32 bits of FNV-1a-64 over the ids (int32 little-endian)
                     of encode(line, add_special_tokens=False)
  cases.json         for every configuration and hand-picked string: the ids, and decode(ids)
Usage: python3 scripts/golden/tokenizer_pretok_golden.py   (from the repository root; tokenizers==0.23.x)
"""
import json
import pathlib
import struct

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders as D, models, normalizers as N
from tokenizers import pre_tokenizers as P, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "testdata" / "tokenizer" / "pretok"
CORPORA = ["data/wikitext-2-raw/wiki.test.raw", "data/tinystories/tinystories_valid_excerpt.txt"]
TRAIN = "data/tinystories/tinystories_train_excerpt.txt"

# name: (normalizer, pre_tokenizer, decoder, byte_level, byte_fallback)
CONFIGS = {
    "digits-bytelevel": (None, P.Sequence([P.Digits(individual_digits=True), P.ByteLevel(add_prefix_space=False)]),
                         D.ByteLevel(), True, False),
    "digits-runs-prefix": (None, P.Sequence([P.Digits(individual_digits=False), P.ByteLevel(add_prefix_space=True)]),
                           D.ByteLevel(), True, False),
    "bytelevel-noregex-nfkc": (N.NFKC(), P.ByteLevel(add_prefix_space=True, use_regex=False), D.ByteLevel(), True, False),
    "whitespace-lower-accents": (N.Sequence([N.NFD(), N.Lowercase(), N.StripAccents(), N.Strip()]), P.Whitespace(),
                                 None, False, False),
    "whitespacesplit-punct": (N.Sequence([N.Lowercase(), N.Strip(left=True, right=False)]),
                              P.Sequence([P.WhitespaceSplit(), P.Punctuation(behavior="merged_with_previous")]),
                              None, False, False),
    "punct-contiguous": (N.Strip(left=False, right=True), P.Sequence([P.WhitespaceSplit(), P.Punctuation("contiguous")]),
                         None, False, False),
    "bert": (N.BertNormalizer(), P.BertPreTokenizer(), None, False, False),
    "bert-cased": (N.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False),
                   P.BertPreTokenizer(), None, False, False),
    "metaspace-always": (N.NFKC(), P.Metaspace(replacement="▁", prepend_scheme="always", split=True),
                         D.Sequence([D.Metaspace(prepend_scheme="always"), D.ByteFallback(), D.Fuse()]), False, True),
    "metaspace-first-nosplit": (None, P.Metaspace(prepend_scheme="first", split=False),
                                D.Sequence([D.ByteFallback(), D.Metaspace(prepend_scheme="first")]), False, True),
    "metaspace-never-digits": (N.Replace(Regex(r"\s+"), " "),
                               P.Sequence([P.Digits(individual_digits=True), P.Metaspace(prepend_scheme="never")]),
                               D.Metaspace(prepend_scheme="never"), False, True),
    "split-string-chardelim": (N.Sequence([N.NFKD(), N.Replace("``", '"')]),
                               P.Sequence([P.Split(" ", "merged_with_next"), P.CharDelimiterSplit("-"),
                                           P.Split(Regex(r"\p{N}+"), "isolated", invert=False)]),
                               None, False, True),
}

CASES = [
    "", " ", "  ", "\n", "Hello world", " Hello  world ", "a\tb\r\nc", "   leading and trailing   ", " Hey", "-a b-c",
    "<s>hi</s> [NEW] and [new] x[NEW]y", "I'M HERE, you'RE there, they'Ll", "1234567 3.14159 ٣٤٥ ½ ² Ⅻ 2nd",
    "Ünïcödé naïve café ﬁ Å (A+ring) e\u0301 e\u0301\u0304o", "İstanbul ΣΑΣ ǅ ẞ ſ K", "日本語のテキストと中文 한국어",
    "emoji 😀👍🏽 ok", "\u00a0nbsp\u2003em\u3000ideo\u0085nel", "tab\t\ttabs\n\nnewlines  \n", "a" * 300, "ab " * 50,
    "email@example.com https://x.y/z?q=1&r=2 $5+3<4>=^`|~", "\u200b\u200d zero width a\u200db", "\U00010348 gothic",
    "\x7f\x01 ctrl \x00nul \ufffd repl", "``quoted'' -- dash--es", "ṩ ậ ǖ Ǆemail", "¿Qué? ¡Sí! «guillemets» „quotes“",
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


def train(name, normalizer, pre, decoder, byte_level, byte_fallback):
    tok = Tokenizer(models.BPE(unk_token=None if byte_level else "<unk>", byte_fallback=byte_fallback))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    if decoder is not None:
        tok.decoder = decoder
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=P.ByteLevel.alphabet() if byte_level else [])
    tok.train_from_iterator(read_lines(SHARED / TRAIN), trainer)
    j = json.loads(tok.to_str())
    if byte_fallback:  # SentencePiece-style byte tokens after the trained vocab
        vocab = j["model"]["vocab"]
        for b in range(256):
            vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_tokens([AddedToken("[NEW]", normalized=True)])  # after the vocab: HF numbers it so on load
    j = json.loads(tok.to_str())
    text = json.dumps(j, ensure_ascii=False, separators=(",", ":")) + "\n"
    (OUT / name).mkdir(parents=True, exist_ok=True)
    (OUT / name / "tokenizer.json").write_text(text)
    return Tokenizer.from_str(text)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [l for c in CORPORA for l in read_lines(SHARED / c)]
    cases = {"tokenizers_version": tokenizers.__version__, "strings": CASES, "configs": {}}
    for name, cfg in CONFIGS.items():
        tok = train(name, *cfg)
        encs = tok.encode_batch(lines, add_special_tokens=False)
        rec = b"".join(struct.pack("<I", fnv1a(struct.pack(f"<{len(e.ids)}i", *e.ids)) & 0xFFFFFFFF) for e in encs)
        (OUT / name / "lines.bin").write_bytes(rec)
        entry = {"encode": [], "decode": []}
        for s in CASES:
            ids = tok.encode(s, add_special_tokens=False).ids
            entry["encode"].append(ids)
            entry["decode"].append(tok.decode(ids, skip_special_tokens=False))
        cases["configs"][name] = entry
        print(f"{name}: {len(lines)} lines, {sum(len(e.ids) for e in encs)} tokens")
    (OUT / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n")


if __name__ == "__main__":
    main()
