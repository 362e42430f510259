"""Benchmark 4: the book's numpy attention against torch's fused scaled_dot_product_attention.

Same float32 queries, keys and values, shape (heads, n, d_head); best of ``--repeats``
interleaved runs on one thread (torch and numpy's OpenBLAS), CPU time of that thread.

    .venv/bin/python benchmarks/bench_attention_numpy_vs_fused.py [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from results_md import machine, table, write_section

from transformer_tutorial.attention import scaled_dot_product_attention
from transformer_tutorial.cost import single_threaded

HEADING = "## Attention core: numpy (ours) vs torch fused scaled_dot_product_attention"
CASES = [(1, 256, 64), (8, 256, 64), (1, 1024, 64), (8, 1024, 64), (1, 4096, 64)]


def timed(fn) -> float:
    """CPU seconds of this thread for one call (all the work runs on it: single_threaded)."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def run(repeats: int) -> list[list[str]]:
    rng = np.random.default_rng(0)
    rows = []
    for heads, n, d in CASES:
        q, k, v = (rng.standard_normal((heads, n, d)).astype(np.float32) for _ in range(3))
        tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
        ctx, _ = scaled_dot_product_attention(q, k, v)
        with torch.inference_mode():
            fused = F.scaled_dot_product_attention(tq, tk, tv)
        err = float(np.abs(ctx - fused.numpy()).max())
        t_np, t_fused = [], []
        with torch.inference_mode():
            for _ in range(repeats + 1):
                t_np.append(timed(lambda q=q, k=k, v=v: scaled_dot_product_attention(q, k, v)))
                t_fused.append(timed(lambda tq=tq, tk=tk, tv=tv:
                                     F.scaled_dot_product_attention(tq, tk, tv)))
        a, b = min(t_np[1:]), min(t_fused[1:])
        rows.append([f"{heads} x {n} x {d}", f"{1e3 * a:.2f}", f"{1e3 * b:.2f}",
                     f"**{a / b:.1f}x**", f"{err:.1e}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with single_threaded():
        rows = run(args.repeats)
    header = ["heads x n x d_head", "numpy (ms)", "torch fused (ms)", "numpy / fused",
              "max abs difference"]
    lines = table(header, rows)
    if not args.no_write:
        write_section(HEADING, [
            f"`benchmarks/bench_attention_numpy_vs_fused.py`, {machine()}. One thread (its "
            f"CPU time), best of {args.repeats} interleaved runs; the last column checks that "
            "both compute the same context vectors.",
            "", *lines,
        ])


if __name__ == "__main__":
    main()
