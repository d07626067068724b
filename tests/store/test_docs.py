"""The store's docs send users to public code only: what they name is what they may import."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import closedloop.store as cs

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRIVATE = re.compile(r"closedloop(?:\.\w+)*\._\w+")


@pytest.mark.parametrize("doc", ["storage.md", "metrics.md"])
def test_the_docs_name_no_private_module(doc):
    assert PRIVATE.findall((DOCS / doc).read_text()) == []


def test_what_the_docs_call_from_python_is_exported():
    """docs/storage.md and docs/sampling.md run the rescue from an app."""
    assert {"rescue", "RescueResult", "NewerSchemaError", "EditedMigrationError"} <= set(cs.__all__)
    assert [name for name in cs.__all__ if not hasattr(cs, name)] == []
