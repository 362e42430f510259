"""A real JupyterLab on 127.0.0.1, driven by Playwright: open a notebook, run it, find its
explorers (shared by the JupyterLab browser test and ``benchmarks/bench_explorers.py``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

EXPLORER = ".jp-OutputArea-output .tt-explorer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code ``cells`` with the package's kernel, no outputs."""
    notebook = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
             "outputs": [], "source": source}
            for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


@contextmanager
def jupyterlab(root: Path, timeout: float = 120.0):
    """A JupyterLab server on ``root``; yields its base URL (with the token) and stops it."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1"}
    env.pop("TRANSFORMER_TUTORIAL_STATIC", None)  # live widgets, not the book's static pages
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--allow-root", "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
        "--LabServerApp.extensions_in_dev_mode=False", "--LabApp.check_for_updates_class="
        "jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = (root / "jupyterlab.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()}"
                    ) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def open_and_run(page, base: str, token: str, notebook: str, explorers: int,
                 timeout: float = 180_000) -> None:
    """Open ``notebook`` in JupyterLab, run all its cells and wait for ``explorers``
    explorers to be drawn."""
    page.goto(f"{base}/lab/tree/{notebook}?token={token}", wait_until="domcontentloaded")
    page.locator(".jp-Notebook").first.wait_for(timeout=timeout)
    accept = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel": the default one
    try:
        accept.wait_for(timeout=15_000)
        accept.click()
    except PlaywrightTimeout:
        pass  # the kernel started without asking
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=timeout
    )
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).first.click()
    page.wait_for_function(
        f"n => document.querySelectorAll({json.dumps(EXPLORER)} + ' svg').length >= n",
        arg=explorers, timeout=timeout,
    )  # fmt: skip
