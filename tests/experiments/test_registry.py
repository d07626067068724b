"""Loading prompt files: the good fixture reads as written; each bad file is refused with
its exact message (file, line, field, fix)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from closedloop.experiments._prompt_dir import load_prompt_directory
from closedloop.experiments._prompt_errors import PromptDirectoryError, PromptFileError
from closedloop.experiments._prompt_file import load_prompt_file
from closedloop.experiments._registry import PromptRegistry

DATA = Path(__file__).parent / "data"
GOOD = DATA / "prompts"
BAD = DATA / "prompts_bad"

# Each bad file and what follows its path in the message: ":line: field: problem; fix".
BAD_FILES = {
    "bad_parameter_value.yaml": ":8: versions.v1.parameters.temperature: 3 is not valid; "
    "it must be a number from 0 to 2",
    # Constructing a value can fail past composing; each is the file's error at its line.
    "bad_int_tag.yaml": ":8: versions.v1.parameters.max_tokens: cannot be read: invalid "
    "literal for int() with base 10: 'abc'; write a plain YAML value, without a tag",
    "control_character.yaml": ": not valid YAML: special characters are not allowed; remove "
    "the control characters",
    "huge_int_parameter.yaml": ":8: versions.v1.parameters.temperature: 99999999999999999999"
    "... (400 characters) is not valid; it must be a number from 0 to 2",
    "huge_int_share.yaml": ":10: versions.v2.share: 99999999999999999999... (400 characters) "
    "is not above 0 and at most 100; write the percent of units as a number, e.g. share: 20",
    "nested_too_deeply.yaml": ": is nested too deeply to read; flatten the YAML",
    "python_tag.yaml": ":7: versions.v1.parameters.temperature: cannot be read: could not "
    "determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'; write a "
    "plain YAML value, without a tag",
    "unused_variable.yaml": ":5: variables: 'product' is declared but no version's messages "
    "use it; use {product} in a message, or remove it from variables:",
    "duplicate_version.yaml": ":8: versions.v1: written twice (first at line 4); keep one, "
    "or give the other a name of its own",
    "empty.yaml": ": is empty; a prompt file is a mapping with name, experiment, variables "
    "and versions",
    "missing_model.yaml": ":4: versions.v1.model: missing; write the model name, "
    "e.g. model: gpt-4o-mini",
    "misspelt_key.yaml": ":3: varibles: unknown key; did you mean variables?",
    "model_not_a_string.yaml": ":6: versions.v1.model: is an integer (4), not a string; "
    "write the model name, e.g. model: gpt-4o-mini",
    "name_mismatch.yaml": ":1: name: 'triage' differs from the file name name_mismatch.yaml; "
    "rename the file to triage.yaml or set name: name_mismatch",
    "no_production.yaml": ":3: versions: no version has status production; set status: "
    "production on the version that serves every unit not in a test",
    "not_yaml.yaml": ":7: not valid YAML: expected ',' or ']', but got ':' (while parsing a "
    "flow sequence, which starts on line 6); fix the YAML syntax",
    "numeric_version.yaml": ":4: versions.1.10: the key is a number (1.10), not a string; "
    "quote it: '1.10'",
    "parameter_at_version_level.yaml": ":7: versions.v1.temperature: unknown key; "
    "model parameters go under parameters:",
    "placeholder_with_format.yaml": ":10: versions.v1.messages[0].content: {price:.2f} is not "
    "a plain placeholder; placeholders are plain names such as {ticket}; write {{ and }} for "
    "a literal brace",
    "share_not_a_number.yaml": ":10: versions.v2.share: is a string (20%), not a number; "
    "write the percent of units as a number, e.g. share: 20",
    "share_on_production.yaml": ":6: versions.v1.share: only testing versions have a share, "
    "and this one is production; remove it (production serves every unit no testing version "
    "takes)",
    "share_over_100.yaml": ":15: versions.v3.share: the testing shares add up to 110 %, "
    "over 100 %; lower them to add up to at most 100 (production serves the rest)",
    "share_too_fine.yaml": ":10: versions.v2.share: 12.345 is finer than the 0.01 % steps "
    "routing has; round it to two decimals",
    "testing_without_share.yaml": ":8: versions.v2.share: missing for a testing version; "
    "write the percent of units as a number, e.g. share: 20",
    "two_production.yaml": ":9: versions.v2.status: a second production version (v1 is "
    "production, line 5); exactly one version serves production: set the other to testing, "
    "shadow or retired",
    "unknown_parameter.yaml": ":8: versions.v1.parameters.temprature: unknown parameter; "
    "did you mean temperature?",
    # The placeholder's own line inside the literal block, not the block's first line.
    "unknown_placeholder.yaml": ":12: versions.v1.messages[0].content: {tikcet} is not a "
    "declared variable; add it to variables: (declared: product, ticket), or correct the name",
    "unknown_role.yaml": ":8: versions.v1.messages[0].role: 'bot' is not a role; use one of "
    "system, developer, user, assistant",
    "unknown_status.yaml": ":5: versions.v1.status: 'live' is not a status; use one of "
    "production, testing, shadow, retired",
    "unmatched_brace.yaml": ':9: versions.v1.messages[0].content: {"label": ...} is not a '
    "plain placeholder; placeholders are plain names such as {ticket}; write {{ and }} for a "
    "literal brace",
}


def test_every_bad_fixture_has_its_expected_message():
    assert sorted(path.name for path in BAD.glob("*.yaml")) == sorted(BAD_FILES)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_refused_with_file_line_field_and_fix(name):
    path = BAD / name
    with pytest.raises(PromptFileError) as caught:
        load_prompt_file(path)
    assert str(caught.value) == f"{path}{BAD_FILES[name]}"
    assert caught.value.path == path


def test_good_file_reads_as_written():
    spec = load_prompt_file(GOOD / "triage.yaml")
    assert (spec.name, spec.experiment, spec.variables) == (
        "triage",
        "triage-2025-06",
        ("product", "ticket"),
    )
    assert [(v.name, v.status, v.share, v.buckets) for v in spec.versions] == [
        ("v3", "production", None, range(0, 8000)),
        ("v4", "testing", 20.0, range(8000, 10000)),
        ("v5", "shadow", None, None),
        ("v2", "retired", None, None),
    ]
    v3 = spec.production
    assert (v3.model, dict(v3.parameters), v3.line) == (
        "gpt-4o-mini",
        {"temperature": 0.2, "max_tokens": 300},
        7,
    )
    assert [(m.role, m.template) for m in v3.messages] == [
        (
            "system",
            "You triage support tickets for {product}.\n"
            "Answer with one of: billing, bug, how-to. Use {{braces}} literally.\n",
        ),
        ("user", "{ticket}"),
    ]
    with pytest.raises(TypeError):
        v3.parameters["temperature"] = 1  # type: ignore[index]


def test_directory_reports_every_bad_file_and_the_registry_refuses_to_start():
    with pytest.raises(PromptDirectoryError) as caught:
        PromptRegistry(BAD)
    errors = caught.value.errors
    assert [error.path.name for error in errors] == sorted(BAD_FILES)
    assert str(caught.value).splitlines() == [str(error) for error in errors]


def test_directory_problems_name_the_directory(tmp_path):
    with pytest.raises(PromptDirectoryError) as missing:
        load_prompt_directory(tmp_path / "nope")
    assert str(missing.value) == (
        f"{tmp_path / 'nope'}: is not a directory; pass the directory that holds the prompt "
        "files, e.g. prompts/"
    )
    (tmp_path / ".triage.yaml.swp").write_text("editor state")
    (tmp_path / "notes.txt").write_text("not a prompt")
    with pytest.raises(PromptDirectoryError) as empty:
        load_prompt_directory(tmp_path)
    assert str(empty.value) == (
        f"{tmp_path}: holds no prompt files; add one file per prompt, such as triage.yaml"
    )


def test_one_prompt_in_two_files_is_refused(tmp_path):
    shutil.copy(GOOD / "triage.yaml", tmp_path / "triage.yaml")
    shutil.copy(GOOD / "triage.yaml", tmp_path / "triage.yml")
    with pytest.raises(PromptDirectoryError) as caught:
        load_prompt_directory(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'triage.yml'}: name: prompt 'triage' is also defined in triage.yaml; "
        "keep one file per prompt"
    )


def test_two_prompts_sharing_an_experiment_id_are_refused(tmp_path):
    # The experiment id keys the routing hash: two prompts sharing one would put every
    # unit in the same arms of both, and their experiments would be confounded.
    shutil.copy(GOOD / "triage.yaml", tmp_path / "triage.yaml")
    text = (GOOD / "triage.yaml").read_text().replace("name: triage", "name: routing")
    (tmp_path / "routing.yaml").write_text(text)
    with pytest.raises(PromptDirectoryError) as caught:
        load_prompt_directory(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'triage.yaml'}: experiment: experiment 'triage-2025-06' is also the "
        "experiment of routing.yaml: both prompts would put every unit in the same arms, so "
        "their results would be confounded; give each prompt its own experiment id, e.g. "
        "experiment: triage-1"
    )


def test_a_file_over_1_mib_is_refused_with_its_size_and_the_limit(tmp_path):
    text = (GOOD / "summarize.yaml").read_text() + "#" * (1 << 20) + "\n"
    (tmp_path / "summarize.yaml").write_text(text)
    with pytest.raises(PromptFileError) as caught:
        load_prompt_file(tmp_path / "summarize.yaml")
    assert str(caught.value) == (
        f"{tmp_path / 'summarize.yaml'}: is {len(text):,} bytes, over the limit of 1,048,576 "
        "bytes (1 MiB); keep one prompt per file, a few kilobytes; move long reference text "
        "into the app and pass it as a variable"
    )
