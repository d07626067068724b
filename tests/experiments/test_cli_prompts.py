"""``closedloop prompts validate`` and ``list``, run through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from closedloop.experiments._cli_prompts import prompts_app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def test_validate_a_good_directory_exits_0_with_a_summary():
    result = runner.invoke(prompts_app, ["validate", str(DATA / "prompts")])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 prompt(s), 5 version(s) OK, in test: triage v4\n"


def test_validate_a_bad_directory_exits_1_with_one_line_per_file():
    result = runner.invoke(prompts_app, ["validate", str(DATA / "prompts_bad")])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    bad_files = sorted(path.name for path in (DATA / "prompts_bad").glob("*.yaml"))
    assert [line.split(":")[0] for line in lines[:-1]] == [
        str(DATA / "prompts_bad" / name) for name in bad_files
    ]
    assert lines[-1] == f"closedloop prompts validate: {len(bad_files)} bad file(s)"
    assert (
        f"{DATA / 'prompts_bad' / 'share_over_100.yaml'}:15: versions.v3.share: the testing "
        "shares add up to 110 %" in result.stderr
    )
    assert result.stdout == ""


def test_list_shows_every_version_with_status_share_buckets_model_and_experiment():
    result = runner.invoke(prompts_app, ["list", str(DATA / "prompts")], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[2:] if line.strip()]
    assert rows == [
        ["summarize", "v1", "production", "100", "%", "0-9999", "gpt-4o-mini", "summarize-1"],
        ["triage", "v3", "production", "80", "%", "0-7999", "gpt-4o-mini", "triage-2025-06"],
        ["v4", "testing", "20", "%", "8000-9999", "gpt-4o-mini"],
        ["v5", "shadow", "-", "-", "gpt-4.1-mini"],
        ["v2", "retired", "-", "-", "gpt-3.5-turbo"],
    ]


def test_list_of_a_bad_directory_fails_like_validate():
    result = runner.invoke(prompts_app, ["list", str(DATA / "prompts_bad")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("closedloop prompts list: ")
