"""Hot reload: edits are seen without a restart, loaded off the user's request, a broken
edit keeps the last good prompts and says why (logged once), and selects stay consistent
while files change."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import pytest

from _support.waiting import wait_for
from closedloop.experiments import _registry
from closedloop.experiments._prompt_errors import PromptDirectoryError
from closedloop.experiments._registry import PromptRegistry

GOOD = Path(__file__).parent / "data" / "prompts"
SUMMARY = """\
name: summarize
experiment: summarize-1
versions:
  {version}:
    status: production
    model: {model}
    messages:
      - role: system
        content: Summarise the conversation in two sentences.
"""


@pytest.fixture
def prompts(tmp_path) -> Path:
    directory = tmp_path / "prompts"
    shutil.copytree(GOOD, directory)
    return directory


def edit(directory: Path, text: str, *, tick: list[int] = [0]) -> None:  # noqa: B006
    """Rewrite summarize.yaml with a distinct mtime (file systems round mtimes)."""
    path = directory / "summarize.yaml"
    path.write_text(text)
    tick[0] += 1
    stamp = 1_700_000_000_000_000_000 + tick[0] * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def served(registry: PromptRegistry) -> tuple[str, str]:
    with registry.select("summarize", unit="u1") as choice:
        return choice.version, choice.model


def serves(registry: PromptRegistry, expected: tuple[str, str]) -> None:
    """Select until the background reload the first select started has swapped in."""
    wait_for(lambda: served(registry) == expected, message=f"{expected} never served")


def failed(registry: PromptRegistry) -> PromptDirectoryError:
    """Select until the background reload the first select started has failed."""
    wait_for(lambda: served(registry) and registry.last_error is not None)
    assert registry.last_error is not None
    return registry.last_error


def test_an_edit_is_seen_by_the_next_poll(prompts):
    registry = PromptRegistry(prompts, poll_interval_s=0)
    assert served(registry) == ("v1", "gpt-4o-mini")
    edit(prompts, SUMMARY.format(version="v2", model="gpt-4.1-mini"))
    serves(registry, ("v2", "gpt-4.1-mini"))


def test_polls_are_rate_limited_and_reload_is_immediate(prompts):
    registry = PromptRegistry(prompts, poll_interval_s=3600)
    edit(prompts, SUMMARY.format(version="v2", model="gpt-4.1-mini"))
    assert served(registry) == ("v1", "gpt-4o-mini")  # the next check is an hour away
    registry.reload()
    assert served(registry) == ("v2", "gpt-4.1-mini")


def test_a_broken_edit_keeps_the_last_good_prompts_and_says_why(prompts, caplog):
    registry = PromptRegistry(prompts, poll_interval_s=0)
    edit(prompts, SUMMARY.format(version="v2", model="[gpt-4.1-mini"))
    with caplog.at_level(logging.WARNING, logger="closedloop.experiments"):
        error = failed(registry)
        for _ in range(3):
            assert served(registry) == ("v1", "gpt-4o-mini")
    [file_error] = error.errors
    assert (file_error.path.name, file_error.line) == ("summarize.yaml", 7)
    assert [record.getMessage() for record in caplog.records] == [
        f"prompt files in {prompts} changed but cannot be used; still serving the last good "
        f"prompts:\n{file_error}"
    ]
    with pytest.raises(PromptDirectoryError):
        registry.reload()
    assert served(registry) == ("v1", "gpt-4o-mini")
    edit(prompts, SUMMARY.format(version="v3", model="gpt-4.1"))
    serves(registry, ("v3", "gpt-4.1"))
    assert registry.last_error is None


def test_a_removed_file_is_a_failed_reload_too(prompts):
    registry = PromptRegistry(prompts, poll_interval_s=0)
    (prompts / "summarize.yaml").unlink()
    (prompts / "triage.yaml").unlink()
    assert "holds no prompt files" in str(failed(registry))
    assert served(registry) == ("v1", "gpt-4o-mini")


def test_selects_stay_consistent_while_files_change(prompts):
    registry = PromptRegistry(prompts, poll_interval_s=0)
    seen: set[tuple[str, str]] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def select_until_stopped() -> None:
        try:
            while not stop.is_set():
                seen.add(served(registry))
        except BaseException as error:  # any exception fails the test below
            failures.append(error)

    threads = [threading.Thread(target=select_until_stopped) for _ in range(3)]
    for thread in threads:
        thread.start()
    for round_ in range(10):
        model = "gpt-4.1-mini" if round_ % 2 else "gpt-4o-mini"
        edit(prompts, SUMMARY.format(version="v1", model=model))
        registry.reload()
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures
    assert seen <= {("v1", "gpt-4o-mini"), ("v1", "gpt-4.1-mini")}


@pytest.mark.parametrize(
    "bad",
    [
        "gpt-4o-mini\n    parameters: {temperature: " + "9" * 400 + "}",
        "gpt-4o-mini\n    parameters: {temperature: !!python/name:os.system ''}",
        "gpt-4o-mini\n    parameters: {max_tokens: !!int abc}",
    ],
    ids=["huge int", "python tag", "bad int tag"],
)
def test_an_edit_that_breaks_constructing_a_value_is_a_failed_reload(prompts, bad):
    registry = PromptRegistry(prompts, poll_interval_s=0)
    edit(prompts, SUMMARY.format(version="v2", model=bad))
    [file_error] = failed(registry).errors  # select never raised
    assert (file_error.path.name, file_error.line) == ("summarize.yaml", 7)
    assert served(registry) == ("v1", "gpt-4o-mini")


def test_a_reload_that_fails_unexpectedly_keeps_serving_and_says_why(prompts, monkeypatch, caplog):
    def broken(directory: Path) -> None:
        raise RuntimeError("a bug in the loader")

    registry = PromptRegistry(prompts, poll_interval_s=0)
    monkeypatch.setattr(_registry, "load_prompt_directory", broken)
    edit(prompts, SUMMARY.format(version="v2", model="gpt-4.1-mini"))
    with caplog.at_level(logging.WARNING, logger="closedloop.experiments"):
        error = failed(registry)
        for _ in range(3):
            assert served(registry) == ("v1", "gpt-4o-mini")
    assert "could not be reloaded (RuntimeError: a bug in the loader)" in str(error)
    assert len(caplog.records) == 1


def test_the_select_that_notices_an_edit_does_not_wait_for_the_load(prompts, monkeypatch):
    loading, release = threading.Event(), threading.Event()
    load = _registry.load_prompt_directory

    def slow(directory: Path) -> object:
        loading.set()
        release.wait(30)  # only keeps a broken run from hanging
        return load(directory)

    registry = PromptRegistry(prompts, poll_interval_s=0)
    monkeypatch.setattr(_registry, "load_prompt_directory", slow)
    edit(prompts, SUMMARY.format(version="v2", model="gpt-4.1-mini"))
    assert served(registry) == ("v1", "gpt-4o-mini")  # returns while the load is held
    assert loading.wait(30)
    assert served(registry) == ("v1", "gpt-4o-mini")  # the old prompts serve meanwhile
    release.set()
    serves(registry, ("v2", "gpt-4.1-mini"))
