"""Reading the collector's tail_sampling config: settings, every key checked, errors that
name the path, and the policy file packaged with closedloop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from closedloop._errors import ClosedloopError
from closedloop.sampling import (
    BufferedTrace,
    Decision,
    Policy,
    SamplerConfig,
    SamplingConfigError,
    load,
    sampler_config,
)
from closedloop.sampling._policies import AlwaysSample

from .support import ERRORS, NEVER, PRODUCTION_CONFIG, ROOT, config, policy

PACKAGED_POLICY = "otel-collector.yaml"  # in closedloop/sampling/, read by load() with no path


def errors_for(section: dict[str, Any]) -> str:
    with pytest.raises(SamplingConfigError) as raised:
        sampler_config(section)
    return str(raised.value)


def test_config_defaults_and_values() -> None:
    cfg = config(
        ERRORS,
        decision_wait="250ms",
        num_traces=7,
        decision_cache={"sampled_cache_size": 3, "non_sampled_cache_size": 4},
    )
    assert cfg.decision_wait_s == pytest.approx(0.25)
    assert (cfg.num_traces, cfg.sampled_cache_size, cfg.non_sampled_cache_size) == (7, 3, 4)
    defaults = config(ERRORS)
    assert defaults.decision_wait_s == 30.0 and defaults.num_traces == 50_000
    assert (defaults.sampled_cache_size, defaults.non_sampled_cache_size) == (0, 0)


def test_config_errors_are_closedloop_errors_and_value_errors() -> None:
    with pytest.raises(SamplingConfigError) as raised:
        sampler_config({"policies": []})
    assert isinstance(raised.value, ClosedloopError)
    assert isinstance(raised.value, ValueError)


def test_unknown_processor_key_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", **ERRORS}], "bogus_key": 1})
    assert "tail_sampling" in message and "bogus_key" in message


def test_unknown_decision_cache_key_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", **ERRORS}], "decision_cache": {"size": 1}})
    assert "tail_sampling.decision_cache" in message and "size" in message


def test_unknown_policy_key_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", **ERRORS, "extra": {}}]})
    assert "tail_sampling.policies[0]" in message and "extra" in message
    status = {"name": "b", "type": "status_code", "status_code": {"status_codes": [], "bogus": 1}}
    message = errors_for({"policies": [{"name": "a", **NEVER}, status]})
    assert "tail_sampling.policies[1].status_code" in message and "bogus" in message


@pytest.mark.parametrize("kind", ["rate_limiting", "bytes_limiting", "composite"])
def test_wall_clock_policies_are_unsupported(kind: str) -> None:
    message = errors_for({"policies": [{"name": "a", "type": kind, kind: {}}]})
    assert "tail_sampling.policies[0]" in message and kind in message
    assert "not supported" in message


def test_unknown_policy_type_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", "type": "telepathy", "telepathy": {}}]})
    assert "tail_sampling.policies[0]" in message and "telepathy" in message


@pytest.mark.parametrize(
    ("policies", "fragment"),
    [
        ([{"type": "always_sample"}], "policies[0].name"),
        ([{"name": "", "type": "always_sample"}], "policies[0].name"),
        ([{"name": "a"}], "policies[0].type"),
        ([{"name": "a", "type": "always_sample"}, {"name": "a", **ERRORS}], "unique"),
        ([], "policies must be a non-empty list"),
    ],
)
def test_policy_names_and_types_are_required_and_unique(
    policies: list[dict[str, Any]], fragment: str
) -> None:
    assert fragment in errors_for({"policies": policies})


class Nameless(Policy):
    """An app's policy that forgot to call Policy.__init__."""

    def __init__(self) -> None:
        pass

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return Decision.SAMPLED


def test_an_apps_policies_are_checked_when_added_with_replace() -> None:
    """The documented way to add a policy skips sampler_config, not SamplerConfig's checks."""
    loaded = config(ERRORS)
    with pytest.raises(TypeError, match=r"^SamplerConfig.policies\[1\]='errors' is a str, not"):
        replace(loaded, policies=(*loaded.policies, "errors"))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^SamplerConfig.policies\[1\].name='' is empty; give the AlwaysSample"
    ):
        replace(loaded, policies=(*loaded.policies, AlwaysSample("")))
    with pytest.raises(
        SamplingConfigError,
        match=r"^SamplerConfig.policies\[1\].name='p0' is also SamplerConfig.policies\[0\]'s",
    ):
        replace(loaded, policies=(*loaded.policies, AlwaysSample("p0")))
    with pytest.raises(TypeError, match=r"^SamplerConfig.policies\[1\].name=None .*the Nameless"):
        replace(loaded, policies=(*loaded.policies, Nameless()))
    with pytest.raises(TypeError, match=r"^SamplerConfig.policies=.* a list, not a tuple"):
        replace(loaded, policies=[*loaded.policies])  # type: ignore[arg-type]


def test_missing_policies_is_an_error() -> None:
    assert "tail_sampling.policies" in errors_for({"decision_wait": "1s"})


@pytest.mark.parametrize("wait", ["10", "ten seconds", "10 s", "10sec", "s"])
def test_bad_duration_is_named(wait: str) -> None:
    message = errors_for({"decision_wait": wait, "policies": [{"name": "a", **ERRORS}]})
    assert "tail_sampling.decision_wait" in message


def test_compound_go_duration_is_accepted() -> None:
    assert config(ERRORS, decision_wait="1m30s").decision_wait_s == 90.0


@pytest.mark.parametrize(
    ("outer", "inner"), [("and", "and"), ("and", "drop"), ("drop", "and"), ("drop", "drop")]
)
def test_nested_and_drop_are_errors(outer: str, inner: str) -> None:
    leaf = {"name": "x", **ERRORS}
    nested = {"name": "inner", "type": inner, inner: {f"{inner}_sub_policy": [leaf]}}
    spec = {"name": "outer", "type": outer, outer: {f"{outer}_sub_policy": [nested]}}
    message = errors_for({"policies": [spec]})
    assert f"tail_sampling.policies[0].{outer}.{outer}_sub_policy[0]" in message
    assert "nested" in message


def test_and_inside_not_is_an_error() -> None:
    inner = {"name": "i", "type": "and", "and": {"and_sub_policy": [{"name": "x", **ERRORS}]}}
    negation = {"name": "n", "type": "not", "not": {"not_sub_policy": inner}}
    message = errors_for({"policies": [negation]})
    assert "tail_sampling.policies[0].not.not_sub_policy" in message


def test_wrong_value_types_are_named() -> None:
    message = errors_for({"num_traces": "many", "policies": [{"name": "a", **ERRORS}]})
    assert "num_traces" in message
    message = errors_for({"policies": [{"name": "a", **policy("latency", threshold_ms="5")}]})
    assert "tail_sampling.policies[0].threshold_ms" in message


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="section="):
        sampler_config([{"name": "a", **ERRORS}])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path="):
        load(7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="processor="):
        load(PRODUCTION_CONFIG, None)  # type: ignore[arg-type]


def test_load_reads_the_named_processor(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "processors:\n"
        "  tail_sampling/custom:\n"
        "    decision_wait: 2s\n"
        "    policies:\n"
        "      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n",
        encoding="utf-8",
    )
    assert load(path, "tail_sampling/custom").decision_batches == 2
    with pytest.raises(SamplingConfigError, match=re.escape("tail_sampling/custom")):
        load(path)


def test_load_names_the_path_of_an_error(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "processors:\n  tail_sampling:\n    policies:\n      - {name: a, type: rate_limiting}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        SamplingConfigError, match=re.escape("processors.tail_sampling.policies[0]")
    ):
        load(path)


# --- the packaged policy ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def production() -> SamplerConfig:
    return load(PRODUCTION_CONFIG)


def test_the_packaged_policy_is_the_collector_config_byte_for_byte() -> None:
    packaged = resources.files("closedloop.sampling").joinpath(PACKAGED_POLICY)
    assert packaged.read_bytes() == PRODUCTION_CONFIG.read_bytes(), (
        "src/closedloop/sampling/otel-collector.yaml must be a copy of "
        "collector/otel-collector.yaml: cp collector/otel-collector.yaml "
        "src/closedloop/sampling/otel-collector.yaml"
    )


def test_load_without_a_path_reads_the_packaged_policy(production: SamplerConfig) -> None:
    packaged = load()
    assert (packaged.decision_wait_s, packaged.num_traces) == (
        production.decision_wait_s,
        production.num_traces,
    )
    assert [(p.name, type(p)) for p in packaged.policies] == [
        (p.name, type(p)) for p in production.policies
    ]


def pip(*arguments: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *arguments],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_an_installed_wheel_loads_the_policy_without_a_checkout(tmp_path: Path) -> None:
    """Build the wheel as pip does, check the policy file is in it, install it into an empty
    directory and load the policy from there, in a fresh interpreter away from the checkout."""
    pip("wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT))
    (wheel,) = (tmp_path / "dist").glob("closedloop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read(f"closedloop/sampling/{PACKAGED_POLICY}")
    assert packaged == PRODUCTION_CONFIG.read_bytes()
    site = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel))
    probe = (
        "import closedloop.sampling as s; c = s.load(); "
        "print(s.__file__); print(c.decision_wait_s, [p.name for p in c.policies])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    module_file, summary = loaded.stdout.splitlines()
    assert module_file.startswith(str(site))  # the installed copy, not the checkout
    assert summary == "10.0 ['errors', 'feedback', 'new-users', 'baseline']"
