"""Benchmark: SmolLM2-135M generation with and without the KV cache, side by side.

Greedy decoding of a fixed number of new tokens (no end-of-sequence stop, so both runs do the
same work), best of ``--repeats`` runs, for a few prompt lengths. ``generate`` runs torch on one
thread (see :func:`transformer_tutorial.generation.generate`). Prints a table and writes it to
its own section of ``benchmarks/results.md`` (other sections are left untouched).

    .venv/bin/python benchmarks/bench_kv_cache.py [--repeats 2] [--no-write]
"""

from __future__ import annotations

import argparse

from results_md import machine, table, write_section

from transformer_tutorial.generation import time_generation
from transformer_tutorial.pretrained import load_smollm2

HEADING = "## KV cache: SmolLM2-135M generation with and without the cache"
SHORT_PROMPT = "Thanks for lunch, I had a"
LONG_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog."] * 25)
CASES = [(SHORT_PROMPT, 32), (SHORT_PROMPT, 128), (LONG_PROMPT, 32)]


def run(repeats: int) -> list[list[str]]:
    smollm2 = load_smollm2()
    rows = []
    for prompt, new_tokens in CASES:
        timing = time_generation(smollm2.model, smollm2.tokenize(prompt).ids, new_tokens, repeats)
        rows.append(
            [
                str(timing.prompt_tokens),
                str(timing.new_tokens),
                f"{timing.seconds_without_cache:.2f}",
                f"{timing.seconds_with_cache:.2f}",
                f"{timing.speedup:.1f}x",
                f"{timing.cache_bytes / 2**20:.1f} MiB",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args()
    where = machine()
    rows = run(args.repeats)
    lines = [
        f"`benchmarks/bench_kv_cache.py`, {where}. Greedy decoding, wall-clock seconds, best of "
        f"{args.repeats}; generation itself runs on one torch thread. Weights 4-bit (Q4_1) "
        "dequantized to float32. The cache holds 2 x 30 layers x 3 key/value heads x 64 "
        "numbers per token (45 KiB in float32).",
        "",
        *table(
            ["prompt tokens", "new tokens", "without cache (s)", "with cache (s)", "speed-up",
             "cache at the end"],
            rows,
            align="rrrrrr",
        ),  # fmt: skip
    ]
    if not args.no_write:
        write_section(HEADING, lines)


if __name__ == "__main__":
    main()
