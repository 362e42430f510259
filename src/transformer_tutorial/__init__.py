"""transformer_tutorial: the shared, tested package behind the interactive Transformer book.

Each module holds one idea of the book, under the name the book uses for it; each chapter's own
material is in :mod:`transformer_tutorial.chapters`. Importing the package does no work and
loads none of its modules: ``import transformer_tutorial as tt`` then ``tt.attention.softmax``
imports :mod:`~transformer_tutorial.attention` on first use.
"""

import importlib
import pkgutil
from types import ModuleType

__version__ = "0.1.0"

_SUBMODULES = frozenset(info.name for info in pkgutil.iter_modules(__path__))


def __getattr__(name: str) -> ModuleType:
    """``tt.<module>``: the package's module ``name``, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})
