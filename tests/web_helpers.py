"""Shared pieces of the web editor's tests: the fixture photo and 'skip here, fail in CI' for missing tools."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TWO_FACES = FIXTURES / "align" / "dlib_voc_2008_001009.jpg"  # PASCAL VOC photo: two faces, numbered 0 and 1
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(what: str, reason: str) -> None:
    """Skip with ``reason``, except in CI (CI=true), where a missing tool is a failure."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def need_module(name: str, install: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        need(name, f"{name} is not installed ({install})")
