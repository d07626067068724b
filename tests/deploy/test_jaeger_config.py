"""jaeger/config.yaml as compose runs it: valid for the built Jaeger v2 with its defaults,
and listening for OTLP where the collector's Jaeger exporter sends by default.
(tests/deploy/test_collector_to_jaeger.py runs it, on free ports.)"""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from _support.collector import PRODUCTION_CONFIG
from _support.jaeger import JAEGER_CONFIG, jaeger_binary

DEFAULT = re.compile(r"^\$\{env:\w+:-(?P<default>.+)\}$")


def default_of(value: str) -> str:
    """The default of an ``${env:NAME:-default}`` setting."""
    match = DEFAULT.match(value)
    assert match, f"{value!r} is not ${{env:NAME:-default}}"
    return match["default"]


def test_jaeger_config_validates_with_its_defaults() -> None:
    binary = jaeger_binary()
    env = {key: value for key, value in os.environ.items() if not key.startswith("JAEGER_")}
    result = subprocess.run(
        [str(binary), "validate", "--config", str(JAEGER_CONFIG)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_collector_sends_to_the_port_jaeger_receives_on() -> None:
    collector = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    jaeger = yaml.safe_load(JAEGER_CONFIG.read_text())
    exporter = default_of(collector["exporters"]["otlp_grpc/jaeger"]["endpoint"])
    receiver = default_of(jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    assert exporter.rsplit(":", 1)[1] == receiver.rsplit(":", 1)[1]
    assert jaeger["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
