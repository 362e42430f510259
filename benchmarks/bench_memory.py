"""Benchmark: SmolLM2-135M peak memory against prompt length, up to its full context.

One forward pass over a prompt of ``n`` tokens (``SmolLM2.run``), for ``n`` up to the 8,192
tokens SmolLM2 advertises: without keeping attention weights (the default of the decoder; a
layer's ``(heads, n, n)`` weights are freed when the next layer runs) and keeping one layer's.
Memory is the process's peak resident size during the call above what it held before
(:func:`transformer_tutorial.cost.process_peak_bytes`, Linux ``VmHWM``); the model's weights
(about 0.6 GB) are loaded before and not counted; the one-layer run only up to 2,048
tokens. The last column is what keeping every layer's weights would need (30 layers x 9 heads
x n^2 float32): what ``run`` did before it let the caller choose, and why it ran out of memory
at a few thousand tokens. Prints a table and writes its section of ``benchmarks/results.md``
after each length.

    .venv/bin/python benchmarks/bench_memory.py [--max-len 8192] [--no-write]
"""

from __future__ import annotations

import argparse
import time

from results_md import machine, table, write_section

from transformer_tutorial.cost import process_peak_bytes
from transformer_tutorial.pretrained import load_smollm2

HEADING = "## Memory: SmolLM2-135M peak memory against prompt length"
LENGTHS = (256, 1024, 2048, 4096, 8192)
GIB = 2**30


def prompt_of(smollm2, n: int) -> str:
    """A text of exactly ``n`` tokens (" a" is one token)."""
    text = " a" * n
    assert len(smollm2.tokenize(text).ids) == n
    return text


ONE_LAYER_UP_TO = 2048  # the second measurement, one layer kept, only up to here (time)


def lines_for(where: str, rows: list[list[str]]) -> list[str]:
    return [
        f"`benchmarks/bench_memory.py`, {where}. One forward pass (`SmolLM2.run`) on one torch "
        "thread; peak resident memory of the process during the call, above what it held "
        "before (the weights are not counted). The machine has 24 GB. Rows are written as "
        "they are measured: a missing length was not reached in the time the run had.",
        "",
        *table(
            ["prompt tokens", "no attention kept (GiB)", "seconds", "layer 0 kept (GiB)",
             "all 30 layers kept would need (GiB)"],
            rows,
            align="rrrrr",
        ),  # fmt: skip
    ]


def run(max_len: int, write: bool) -> list[list[str]]:
    where = machine()
    smollm2 = load_smollm2()
    config = smollm2.model.config
    rows: list[list[str]] = []
    for n in (n for n in LENGTHS if n <= min(max_len, config.max_positions)):
        text = prompt_of(smollm2, n)
        start = time.perf_counter()
        without = process_peak_bytes(lambda t=text: smollm2.run(t, attention_layers=None))
        seconds = time.perf_counter() - start
        one = "—"
        if n <= ONE_LAYER_UP_TO:
            kept = process_peak_bytes(lambda t=text: smollm2.run(t, attention_layers=[0]))
            one = f"{kept / GIB:.2f}"
        every = config.num_layers * config.num_heads * n * n * 4
        rows.append([str(n), f"{without / GIB:.2f}", f"{seconds:.0f}", one, f"{every / GIB:.1f}"])
        print(" | ".join(rows[-1]), flush=True)
        if write:
            write_section(HEADING, lines_for(where, rows))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-len", type=int, default=8192)
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args()
    run(args.max_len, not args.no_write)


if __name__ == "__main__":
    main()
