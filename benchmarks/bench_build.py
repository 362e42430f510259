"""Benchmark 1: cold book build, per-notebook execution, rebuild with nothing changed, and
training the chapter-8 reversal model.

The build runs in a copy of the tree (``--workdir``, default ``/tmp/tt-bench-build``), never in
the working tree: a copy without ``.venv``, ``_build`` and ``.git``, then
``jupyter-book build . --warningiserror --keep-going`` twice (cold, then again with nothing
changed). Per-notebook times come from the execution cache the build fills. Goals: cold build
<= 5 min, each notebook <= 60 s, rebuild <= 30 s, training <= 60 s (2 cores).

    .venv/bin/python benchmarks/bench_build.py [--workdir /tmp/tt-bench-build] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from results_md import machine, table, write_section

HEADING = "## Book build and notebook execution"
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


# Top-level entries the copy leaves out: the venv, every earlier build, git's own files.
SKIP_TOP = {".venv", "_build", ".git", ".pytest_cache"}


def copy_tree(workdir: Path) -> None:
    """A fresh copy of the tree, without any earlier build (its execution cache included)."""
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(
        ROOT, workdir, symlinks=True,
        ignore=lambda folder, names: SKIP_TOP & set(names) if Path(folder) == ROOT else set(),
    )  # fmt: skip


def build(workdir: Path, log: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(
            [str(BIN / "jupyter-book"), "build", ".", "--warningiserror", "--keep-going"],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "2"},
        ).returncode  # fmt: skip
    return time.perf_counter() - start, code


def notebook_seconds(workdir: Path) -> dict[str, float]:
    """Execution time of every notebook the build ran, from its jupyter-cache records."""
    from jupyter_cache import get_cache

    cache = get_cache(workdir / "_build" / ".jupyter_cache")
    times = {}
    for record in cache.list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is not None:
            times[Path(record.uri).stem] = float(seconds)
    return dict(sorted(times.items()))


def training_seconds() -> tuple[float, float]:
    from transformer_tutorial.training import TrainConfig, sequence_accuracy, train

    run = train(TrainConfig(), progress=False)
    return run.seconds, sequence_accuracy(run.model, "reverse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tt-bench-build"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header_line = machine()
    copy_tree(args.workdir)
    cold, cold_code = build(args.workdir, args.workdir.parent / "tt-bench-build-cold.log")
    print(f"cold build: {cold:.0f} s (exit {cold_code})", flush=True)
    notebooks = notebook_seconds(args.workdir)
    warm, warm_code = build(args.workdir, args.workdir.parent / "tt-bench-build-warm.log")
    print(f"rebuild: {warm:.0f} s (exit {warm_code})", flush=True)
    train_s, accuracy = training_seconds()

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = [
        ["cold build (all notebooks executed)", f"{cold:.0f}", "<= 300",
         verdict(cold <= 300 and cold_code == 0)],
        ["rebuild, nothing changed", f"{warm:.1f}", "<= 30",
         verdict(warm <= 30 and warm_code == 0)],
        [f"training the reversal model (300 steps, accuracy {accuracy:.1%})", f"{train_s:.1f}",
         "<= 60", verdict(train_s <= 60)],
    ] + [
        [f"notebook `{name}`", f"{seconds:.1f}", "<= 60", verdict(seconds <= 60)]
        for name, seconds in notebooks.items()
    ]  # fmt: skip
    lines = table(["what", "seconds", "goal", "met"], rows, align="lrrl")
    if cold_code or warm_code:
        lines += ["", f"The build exited with {cold_code} (cold) / {warm_code} (rebuild): see "
                  f"{args.workdir.parent}/tt-bench-build-*.log."]
    if not args.no_write:
        write_section(HEADING, [
            f"`benchmarks/bench_build.py`, {header_line}. Wall-clock times in a fresh copy "
            "of the tree; the notebooks' times are the build's own (jupyter-cache).",
            "", *lines,
        ])


if __name__ == "__main__":
    main()
