"""Benchmark 3: our MultiHeadAttention forward against torch.nn.MultiheadAttention.

Same weights (copied), same input, interleaved runs, best of ``--repeats``, on one thread
(CPU time of that thread, so other programs on the machine do not count). torch is timed
twice: returning per-head weights like ours (``need_weights=True, average_attn_weights=False``)
and without weights (its fused fast path). Goal: ours <= 1.3x torch at equal work.

    .venv/bin/python benchmarks/bench_multihead.py [--repeats 10] [--no-write]
"""

from __future__ import annotations

import argparse
import time

import torch
from results_md import machine, table, write_section
from torch import nn

from transformer_tutorial.cost import single_threaded
from transformer_tutorial.multihead import MultiHeadAttention

HEADING = "## Multi-head attention: ours vs torch.nn.MultiheadAttention"
CASES = [(8, 256, 256, 8), (1, 1024, 512, 8)]  # batch, seq, d_model, heads


def timed(fn) -> float:
    """CPU seconds of this thread for one call (all the work runs on it: single_threaded)."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


@torch.inference_mode()
def measure(batch: int, seq: int, d_model: int, heads: int, repeats: int) -> list[float]:
    """Best seconds of ours, torch with per-head weights, torch fused; interleaved runs."""
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(d_model, heads, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(ref).eval()
    x = torch.randn(batch, seq, d_model)
    calls = (
        lambda: ours(x),
        lambda: ref(x, x, x, average_attn_weights=False),
        lambda: ref(x, x, x, need_weights=False),
    )  # fmt: skip
    times: list[list[float]] = [[], [], []]
    for _ in range(repeats + 1):  # interleaved, so drifts in machine load hit all three
        for call, kept in zip(calls, times, strict=True):
            kept.append(timed(call))
    return [min(t[1:]) for t in times]  # the first run is a warm-up


def run(repeats: int) -> list[list[str]]:
    rows = []
    for batch, seq, d_model, heads in CASES:
        a, b, c = measure(batch, seq, d_model, heads, repeats)
        rows.append([
            f"({batch}, {seq}, {d_model}), {heads} heads", f"{1e3 * a:.2f}", f"{1e3 * b:.2f}",
            f"{1e3 * c:.2f}", f"**{a / b:.2f}x**", f"{a / c:.2f}x",
        ])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with single_threaded():
        rows = run(args.repeats)
    header = ["(batch, seq, d_model)", "ours (ms)", "torch, with weights (ms)",
              "torch, fused, no weights (ms)", "ours / torch with weights (goal <= 1.3x)",
              "ours / torch fused"]
    lines = table(header, rows)
    if not args.no_write:
        write_section(HEADING, [
            f"`benchmarks/bench_multihead.py`, {machine()}. Forward pass on one thread "
            f"(its CPU time), best of {args.repeats} interleaved runs. Ours always returns "
            "the per-head weights; the fair comparison is torch with `need_weights=True, "
            "average_attn_weights=False`.",
            "", *lines,
        ])


if __name__ == "__main__":
    main()
