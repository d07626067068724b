"""Tests that need a tool outside Python (Go, the built collector): skipped where it is
missing, failed instead where CI says it must be there (a skip would hide the gap)."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def missing(message: str, required_by: str) -> NoReturn:
    """Skip the test, or fail it when the environment variable ``required_by`` is ``1``."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{message} ({required_by}=1 requires it)")
    pytest.skip(message)


def require_go(purpose: str) -> None:
    """Go on PATH, or skip (fail under ``CLOSEDLOOP_REQUIRE_GO=1``) saying what it is for."""
    if shutil.which("go") is None:
        missing(f"Go is not installed: cannot {purpose}", "CLOSEDLOOP_REQUIRE_GO")
