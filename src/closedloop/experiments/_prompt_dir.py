"""Read a directory of prompt files, every file checked, and notice when any changes.

Each bad file gets its own error, so ``closedloop prompts validate`` shows them all at
once; the registry uses nothing from a directory with any bad file, because serving some
prompts from a half-edited directory would make the running app differ from git.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

from closedloop.experiments._prompt_errors import PromptDirectoryError, PromptFileError
from closedloop.experiments._prompt_file import SUFFIXES, load_prompt_file
from closedloop.experiments._prompt_spec import PromptSpec

Signature: TypeAlias = tuple[tuple[str, int, int, int], ...] | str
"""What changes when a prompt file is edited, added, removed or replaced (or the
directory becomes unreadable: then the reason)."""


def _is_prompt_file(entry: os.DirEntry[str]) -> bool:
    # Editors' swap and backup files start with "." or end otherwise; they are not prompts.
    return not entry.name.startswith(".") and entry.name.endswith(SUFFIXES) and entry.is_file()


def directory_signature(directory: Path) -> Signature:
    """Names, inodes, mtimes and sizes of the prompt files: cheap enough to poll."""
    try:
        with os.scandir(directory) as entries:
            found = []
            for entry in entries:
                if _is_prompt_file(entry):
                    stat = entry.stat()
                    found.append((entry.name, stat.st_ino, stat.st_mtime_ns, stat.st_size))
    except OSError as error:
        return str(error)
    return tuple(sorted(found))


def load_prompt_directory(directory: Path) -> dict[str, PromptSpec]:
    """Every prompt in ``directory`` by name, or a :class:`PromptDirectoryError` with one
    error per bad file."""
    if not directory.is_dir():
        raise PromptDirectoryError(
            [
                PromptFileError(
                    directory,
                    None,
                    None,
                    "is not a directory",
                    "pass the directory that holds the prompt files, e.g. prompts/",
                )
            ]
        )
    with os.scandir(directory) as entries:
        paths = sorted(directory / entry.name for entry in entries if _is_prompt_file(entry))
    if not paths:
        raise PromptDirectoryError(
            [
                PromptFileError(
                    directory,
                    None,
                    None,
                    "holds no prompt files",
                    "add one file per prompt, such as triage.yaml",
                )
            ]
        )
    prompts: dict[str, PromptSpec] = {}
    errors: list[PromptFileError] = []
    for path in paths:
        try:
            spec = load_prompt_file(path)
        except PromptFileError as error:
            errors.append(error)
            continue
        if spec.name in prompts:
            errors.append(
                PromptFileError(
                    path,
                    None,
                    "name",
                    f"prompt {spec.name!r} is also defined in {prompts[spec.name].path.name}",
                    "keep one file per prompt",
                )
            )
            continue
        prompts[spec.name] = spec
    if errors:
        raise PromptDirectoryError(errors)
    return prompts
