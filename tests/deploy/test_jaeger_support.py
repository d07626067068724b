"""tests/_support/jaeger.py: a missing Jaeger skips, or fails where CI requires it, and a
Jaeger that cannot start says why at once instead of timing out."""

from __future__ import annotations

from pathlib import Path

import pytest

from _support import jaeger
from _support.jaeger import jaeger_binary, running_jaeger


def test_a_missing_jaeger_skips_or_fails_where_it_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(jaeger, "JAEGER", tmp_path / "jaeger")
    monkeypatch.delenv("CLOSEDLOOP_REQUIRE_JAEGER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="build it with `make jaeger`"):
        jaeger_binary()
    monkeypatch.setenv("CLOSEDLOOP_REQUIRE_JAEGER", "1")
    with pytest.raises(pytest.fail.Exception, match="CLOSEDLOOP_REQUIRE_JAEGER=1"):
        jaeger_binary()


def test_a_jaeger_that_cannot_start_says_why(tmp_path: Path) -> None:
    jaeger_binary()
    config = tmp_path / "broken.yaml"
    config.write_text("exporters:\n  no_such_exporter:\n")
    with (
        pytest.raises(RuntimeError, match=r"(?s)jaeger exited early.*no_such_exporter"),
        running_jaeger(tmp_path, config),
    ):
        pass
