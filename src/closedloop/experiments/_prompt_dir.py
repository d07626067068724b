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
    try:
        with os.scandir(directory) as entries:
            paths = sorted(directory / entry.name for entry in entries if _is_prompt_file(entry))
    except OSError as error:
        raise PromptDirectoryError(
            [
                PromptFileError(
                    directory,
                    None,
                    None,
                    f"cannot be listed ({error})",
                    "make the directory readable by the app",
                )
            ]
        ) from None
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
    experiments: dict[str, PromptSpec] = {}
    errors: list[PromptFileError] = []
    for path in paths:
        try:
            spec = load_prompt_file(path)
        except PromptFileError as error:
            errors.append(error)
            continue
        except Exception as error:  # a bug of the checks: still report every file
            errors.append(
                PromptFileError(
                    path,
                    None,
                    None,
                    f"cannot be loaded ({type(error).__name__}: {error})",
                    "fix the file, and report to closedloop that it named no line",
                )
            )
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
        other = experiments.get(spec.experiment)
        if other is not None:
            errors.append(
                PromptFileError(
                    path,
                    None,
                    "experiment",
                    f"experiment {spec.experiment!r} is also the experiment of {other.path.name}: "
                    "both prompts would put every unit in the same arms, so their results "
                    "would be confounded",
                    f"give each prompt its own experiment id, e.g. experiment: {spec.name}-1",
                )
            )
            continue
        prompts[spec.name] = spec
        experiments[spec.experiment] = spec
    if errors:
        raise PromptDirectoryError(errors)
    return prompts
