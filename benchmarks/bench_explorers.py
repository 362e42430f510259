"""Benchmark 2: how long an explorer takes to redraw after the reader moves a control.

Every explorer declared in ``explorers.py`` is built once (models load then, not counted),
then its controls are moved 50 times to random (seeded) new positions. Each change is timed
as a live kernel does it, ``explorer.png(**values)``, with the PNG cache emptied first so that
every change is a real redraw (a live kernel would answer a revisited position from its
cache). Wall-clock p50/p95 is what the reader waits on this machine; CPU p95 is the same
redraws on the CPU clock of the thread, which other programs running do not inflate.
Goal: p95 <= 50 ms.

    .venv/bin/python benchmarks/bench_explorers.py [--changes 50] [--no-write]
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np
from results_md import machine, table, write_section

from transformer_tutorial import explorers
from transformer_tutorial.explorers import Explorer

HEADING = "## Explorer redraw latency (live kernel)"


def declared_explorers() -> dict[str, Explorer]:
    """Every ``def name(...) -> Explorer`` of explorers.py, built with its defaults (the
    chapter-8 explorer with a short seeded training run, which has the same figures)."""
    found = {}
    for name, fn in inspect.getmembers(explorers, inspect.isfunction):
        if fn.__module__ != explorers.__name__:
            continue
        signature = inspect.signature(fn)
        if signature.return_annotation not in (Explorer, "Explorer"):
            continue
        if name == "cross_attention_training":
            from transformer_tutorial.training import TrainConfig, train

            config = TrainConfig(steps=60, snapshot_steps=(0, 20, 40, 60))
            found[name] = fn(train(config, progress=False))
        elif all(p.default is not p.empty for p in signature.parameters.values()):
            found[name] = fn()
    return found


def measure(explorer: Explorer, changes: int, seed: int = 0) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    grid = [c.values for c in explorer.controls]
    current = tuple(c.default for c in explorer.controls)
    explorer.png(**dict(zip([c.name for c in explorer.controls], current, strict=True)))
    wall, cpu = [], []
    for _ in range(changes):
        while True:  # a new position: one control moved to another value
            i = int(rng.integers(len(grid)))
            value = grid[i][int(rng.integers(len(grid[i])))]
            if len(grid[i]) == 1 or value != current[i]:
                break
        current = current[:i] + (value,) + current[i + 1 :]
        values = dict(zip([c.name for c in explorer.controls], current, strict=True))
        explorer._pngs.clear()
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            explorer.png(**values)
        except ValueError:
            pass  # the reader sees the message instead; it took as long
        wall.append(time.perf_counter() - w0)
        cpu.append(time.thread_time() - c0)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header_line = machine()
    rows = []
    for name, explorer in declared_explorers().items():
        wall, cpu = measure(explorer, args.changes)
        p95 = float(np.percentile(wall, 95)) * 1e3
        rows.append([
            f"`{name}`", f"{np.percentile(wall, 50) * 1e3:.0f}", f"{p95:.0f}",
            f"{np.percentile(cpu, 95) * 1e3:.0f}",
            "yes" if p95 <= 50 else "no",
        ])  # fmt: skip
    header = ["explorer", "p50 wall (ms)", "p95 wall (ms)", "p95 CPU (ms)", "p95 wall <= 50 ms"]
    lines = table(header, rows)
    if not args.no_write:
        write_section(HEADING, [
            f"`benchmarks/bench_explorers.py`, {header_line}. {args.changes} control changes "
            "per explorer, every one a full redraw (figure + PNG, cache emptied).",
            "", *lines,
        ])


if __name__ == "__main__":
    main()
