"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from transformer_tutorial.cost import single_threaded


@pytest.fixture
def one_thread():
    """Run a test on one torch thread, restored afterwards. The pretrained references use it:
    on a busy 2-core machine a second thread mostly waits (our models already run
    single-threaded, see ``pretrained``)."""
    with single_threaded():
        yield
