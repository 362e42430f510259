"""The book build's Sphinx extension (listed in ``_config.yml``).

It makes every explorer render as its static HTML viewer: notebooks executed during the book
build run in kernels started by this process, and they inherit its environment.
"""

from __future__ import annotations

import os

from transformer_tutorial import __version__
from transformer_tutorial.explorers import STATIC_ENV_VAR


def setup(app) -> dict:
    os.environ[STATIC_ENV_VAR] = "1"
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
