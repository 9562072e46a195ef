#!/usr/bin/env python3
"""Driver of scripts/bench/bench_tokenizer.sh: encode every line of a text file (split on "\\n", as
`llmopt tokenize`; add_special_tokens=False) single-threaded with `llmopt -t 1 tokenize` and with HF
`tokenizers` (RAYON_NUM_THREADS=1; both encode_batch over all lines and encode() per line are timed), on the
same machine in the same run, alternating, best of N. Checks both produced the same ids (FNV-1a-64 over all ids).

llmopt times come from its `-v` log: encode = the encode loop only (wall), load = Tokenizer::load (wall);
also the whole process wall time (start, load, read stdin, encode, print). HF: encode_batch / per-line encode
wall time, Tokenizer.from_file wall time.
Usage: RAYON_NUM_THREADS=1 bench_tokenizer.py LLMOPT_BIN TEXT REPEAT TOKENIZER_DIR...
"""
import os
import platform
import re
import struct
import subprocess
import sys
import time

assert os.environ.get("RAYON_NUM_THREADS") == "1", "set RAYON_NUM_THREADS=1 before Python starts"
from tokenizers import Tokenizer  # noqa: E402


def fnv1a(data: bytes, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def ids_hash(ids):
    return fnv1a(struct.pack(f"<{len(ids)}i", *ids))


def run_llmopt(binary, tok_dir, text_path):
    t = time.perf_counter()
    with open(text_path, "rb") as f:
        p = subprocess.run([binary, "-v", "-t", "1", "tokenize", tok_dir], stdin=f, capture_output=True, check=True)
    wall = (time.perf_counter() - t) * 1e3
    err = p.stderr.decode()
    load = re.search(r"loaded .* in ([0-9.]+) ms \(cpu ([0-9.]+) ms\)", err)
    enc = re.search(r"tokens in ([0-9.]+) ms \(cpu ([0-9.]+) ms\)", err)
    ids = [int(x) for line in p.stdout.decode().split("\n") for x in line.split()]
    return {"load_ms": float(load.group(1)), "load_cpu_ms": float(load.group(2)), "encode_ms": float(enc.group(1)),
            "encode_cpu_ms": float(enc.group(2)), "process_ms": wall, "hash": ids_hash(ids), "tokens": len(ids)}


def run_hf(tok, lines):
    t = time.perf_counter()
    encs = tok.encode_batch(lines, add_special_tokens=False)
    batch = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    for line in lines:
        tok.encode(line, add_special_tokens=False)
    per_line = (time.perf_counter() - t) * 1e3
    ids = [i for e in encs for i in e.ids]
    return {"batch_ms": batch, "line_ms": per_line, "hash": ids_hash(ids), "tokens": len(ids)}


def main():
    binary, text_path, repeat, dirs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    text = open(text_path, "rb").read().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if l.startswith("Model name")), platform.processor())
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} | {cpu}, {os.cpu_count()} cores | load average {os.getloadavg()[0]:.1f} at start")
    print(f"# text: {text_path} ({len(text.encode())} bytes, {len(lines)} lines); best of {repeat}, alternating; single thread")
    print("| tokenizer | tokens | llmopt encode ms (cpu) | HF encode_batch ms | HF per-line encode ms | HF batch / llmopt "
          "| llmopt load ms (cpu) | HF load ms (cpu) | llmopt whole process ms | same ids |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for d in dirs:
        best_l, best_h, hf_load, hf_load_cpu = None, None, 1e18, 1e18
        for _ in range(repeat):
            l = run_llmopt(binary, d, text_path)
            t, c = time.perf_counter(), time.process_time()
            tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # fresh: no warm cache from the last round
            hf_load = min(hf_load, (time.perf_counter() - t) * 1e3)
            hf_load_cpu = min(hf_load_cpu, (time.process_time() - c) * 1e3)
            h = run_hf(tok, lines)
            best_l = l if best_l is None else {k: min(v, best_l[k]) if k.endswith("ms") else v for k, v in l.items()}
            best_h = h if best_h is None else {k: min(v, best_h[k]) if k.endswith("ms") else v for k, v in h.items()}
        same = best_l["hash"] == best_h["hash"] and best_l["tokens"] == best_h["tokens"]
        print(f"| {os.path.basename(d.rstrip('/'))} | {best_h['tokens']} | {best_l['encode_ms']:.1f} ({best_l['encode_cpu_ms']:.1f}) "
              f"| {best_h['batch_ms']:.1f} | {best_h['line_ms']:.1f} | {best_h['batch_ms'] / best_l['encode_ms']:.2f}x "
              f"| {best_l['load_ms']:.1f} ({best_l['load_cpu_ms']:.1f}) | {hf_load:.1f} ({hf_load_cpu:.1f}) "
              f"| {best_l['process_ms']:.1f} | {'yes' if same else 'NO'} |")
        if not same:
            sys.exit(f"llmopt and HF ids differ for {d}")


if __name__ == "__main__":
    main()
