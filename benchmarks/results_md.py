"""Write one benchmark's section of ``benchmarks/results.md``, leaving the others untouched.

Each benchmark owns one ``## heading``; its section runs to the next ``## `` heading.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("results.md")


def machine() -> str:
    """One line saying where and when the numbers were measured."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{when}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"{os.cpu_count()} cores visible ({platform.processor() or platform.machine()}), "
        f"load average {load:.1f} at the start"
    )


def write_section(heading: str, lines: list[str]) -> None:
    """Replace (or append) the section ``heading`` with ``lines`` and print where it went."""
    if not heading.startswith("## "):
        raise ValueError(f"heading must start with '## ', got {heading!r}")
    section = "\n".join([heading, "", *lines, ""])
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
    print(f"updated {RESULTS.name}: {heading[3:]}")


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A Markdown table; ``align``: one character per column, ``l`` or ``r`` (default right
    except the first column)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    for line in out:
        print(line)
    return out
