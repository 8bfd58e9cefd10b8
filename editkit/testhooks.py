"""A test-only pause point, so tests can deliver a signal at an exact moment instead of guessing with sleeps.

With ``EDITKIT_TEST_PAUSE=NAME:PATH`` in the environment, the first time the program reaches the pause
point ``NAME`` it creates the file ``PATH`` (the test waits for it) and then blocks until ``PATH`` is
deleted, for at most 120 s. A signal arriving meanwhile interrupts the wait like any other work.
Without the variable (every normal run) :func:`pause` does nothing.

Points: ``atomic-write`` (an output's temporary file is complete, before it is renamed into place) and
``batch-item`` (a batch has finished one photo and recorded it).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "EDITKIT_TEST_PAUSE"
_done: set[str] = set()


def pause(point: str) -> None:
    spec = os.environ.get(ENV)
    if not spec or point in _done:
        return
    name, _, path = spec.partition(":")
    if name != point or not path:
        return
    _done.add(point)
    flag = Path(path)
    flag.write_text(f"{os.getpid()}\n")
    deadline = time.monotonic() + 120
    while flag.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
