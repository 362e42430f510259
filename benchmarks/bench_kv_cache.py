"""Benchmark: SmolLM2-135M generation with and without the KV cache, side by side.

Greedy decoding of a fixed number of new tokens (no end-of-sequence stop, so both runs do the
same work), best of ``--repeats`` runs, for a few prompt lengths. Prints a table and writes it
to the "KV cache" section of ``benchmarks/results.md`` (other sections are left untouched).

    .venv/bin/python benchmarks/bench_kv_cache.py [--repeats 2] [--threads N] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
from pathlib import Path

import torch

from transformer_tutorial.generation import time_generation
from transformer_tutorial.pretrained import load_smollm2

RESULTS = Path(__file__).with_name("results.md")
HEADING = "## KV cache: SmolLM2-135M generation with and without the cache"
SHORT_PROMPT = "Thanks for lunch, I had a"
LONG_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog."] * 25)
CASES = [(SHORT_PROMPT, 32), (SHORT_PROMPT, 128), (LONG_PROMPT, 32)]


def run(repeats: int) -> list[str]:
    smollm2 = load_smollm2()
    rows = [
        "| prompt tokens | new tokens | without cache (s) | with cache (s) | speed-up | "
        "cache at the end |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for prompt, new_tokens in CASES:
        ids = smollm2.tokenize(prompt).ids
        timing = time_generation(smollm2.model, ids, new_tokens, repeats)
        row = (
            f"| {timing.prompt_tokens} | {timing.new_tokens} | "
            f"{timing.seconds_without_cache:.2f} | {timing.seconds_with_cache:.2f} | "
            f"{timing.speedup:.1f}x | {timing.cache_bytes / 2**20:.1f} MiB |"
        )
        print(row, flush=True)
        rows.append(row)
    return rows


def write_section(rows: list[str], repeats: int) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    section = "\n".join(
        [
            HEADING,
            "",
            f"`benchmarks/bench_kv_cache.py`, {when}: greedy decoding, best of {repeats}, "
            f"torch {torch.__version__} on {torch.get_num_threads()} CPU thread(s) "
            f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
            f"load average {load} when the run ended: other jobs shared the CPU if it exceeds "
            "the core count). "
            "Weights 4-bit (Q4_1) dequantized to float32. The cache holds 2 x 30 layers x 3 "
            "key/value heads x 64 numbers per token (45 KiB in float32).",
            "",
            *rows,
            "",
        ]
    )
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
    print(f"updated {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.repeats)
    if not args.no_write:
        write_section(rows, args.repeats)


if __name__ == "__main__":
    main()
