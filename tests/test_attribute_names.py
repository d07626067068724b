"""Every attribute, span and event name the SQL and the collector config read is defined in
``closedloop.instrumentation._attributes``: a typo there would silently read nothing."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import yaml
from opentelemetry.semconv import attributes as stable_attributes
from opentelemetry.semconv._incubating import attributes as incubating_attributes
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes

from closedloop.instrumentation import _attributes as attributes

ROOT = Path(__file__).resolve().parents[1]
SQL_FILES = sorted(
    [
        *(ROOT / "src/closedloop/store/sql").rglob("*.sql"),
        *(ROOT / "src/closedloop/store/queries").glob("*.sql"),
    ]
)
YAML_FILES = sorted(
    [*(ROOT / "collector").glob("*.yaml"), ROOT / "src/closedloop/sampling/otel-collector.yaml"]
)
KEY = re.compile(r"(?:gen_ai|closedloop|user|session|server|error|openai)\.[A-Za-z0-9_.]+")
QUOTED = re.compile(r"""(['"])([^'"\n]+)\1""")
DEFINED = {value for name, value in vars(attributes).items() if name.isupper()}
# Not generated as constants by the semantic-conventions package (see attributes.py).
NOT_IN_SEMCONV = {attributes.PROMPT_VERSION, attributes.EVALUATION_RESULT_EVENT}


def quoted_keys(text: str) -> Iterator[str]:
    """Quoted strings shaped like an attribute key: SQL literals, OTTL strings."""
    for _, value in QUOTED.findall(text):
        if KEY.fullmatch(value):
            yield value


def yaml_keys(text: str) -> Iterator[str]:
    """Keys in a collector config: whole values (``key: closedloop.user.new``) and quoted
    strings inside OTTL conditions. Comments are not read."""

    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for child in node.values():
                yield from walk(child)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child)
        elif isinstance(node, str):
            if KEY.fullmatch(node):
                yield node
            yield from quoted_keys(node)

    yield from walk(yaml.safe_load(text))


def unknown_keys(sql: dict[str, str], configs: dict[str, str]) -> dict[str, set[str]]:
    found = {name: set(quoted_keys(text)) for name, text in sql.items()}
    found.update({name: set(yaml_keys(text)) for name, text in configs.items()})
    return {name: keys - DEFINED for name, keys in found.items() if keys - DEFINED}


def test_the_files_exist_and_read_many_keys():
    """Guards the check below against globs that match nothing."""
    assert len(SQL_FILES) >= 10 and len(YAML_FILES) >= 2
    read = {key for path in SQL_FILES for key in quoted_keys(path.read_text())}
    assert {attributes.USER_HASH, attributes.FEEDBACK_KIND, attributes.USAGE_INPUT_TOKENS} <= read
    configured = {key for path in YAML_FILES for key in yaml_keys(path.read_text())}
    assert {attributes.USER_NEW, attributes.FEEDBACK_SPAN_NAME} <= configured


def test_sql_and_collector_config_use_only_defined_names():
    sql = {str(path.relative_to(ROOT)): path.read_text() for path in SQL_FILES}
    configs = {str(path.relative_to(ROOT)): path.read_text() for path in YAML_FILES}
    assert unknown_keys(sql, configs) == {}


def test_an_unknown_name_is_reported():
    """The check above can fail: synthetic files with one misspelt key each."""
    sql = {
        "bad.sql": "SELECT SpanAttributes['closedloop.user.newbie'], "
        "SpanAttributes['gen_ai.usage.input_tokens'] FROM t"
    }
    configs = {
        "bad.yaml": "policies:\n  - boolean_attribute:\n      key: user.hashed\n"
        "  - ottl_condition:\n      span: ['attributes[\"error.kind\"] != nil']\n"
    }
    assert unknown_keys(sql, configs) == {
        "bad.sql": {"closedloop.user.newbie"},
        "bad.yaml": {"user.hashed", "error.kind"},
    }


def semantic_convention_names() -> set[str]:
    """Every attribute name the installed semantic-conventions package defines."""
    names = set()
    for package in (stable_attributes, incubating_attributes):
        for module in pkgutil.iter_modules(package.__path__):
            members = vars(importlib.import_module(f"{package.__name__}.{module.name}"))
            names |= {v for k, v in members.items() if k.isupper() and isinstance(v, str)}
    return names


def test_names_outside_closedloop_are_the_semantic_conventions():
    """Only ``closedloop.*`` names are ours; the rest are the conventions' own spelling."""
    conventions = semantic_convention_names()
    assert gen_ai_attributes.GEN_AI_OPERATION_NAME in conventions
    foreign = {
        name: value
        for name, value in vars(attributes).items()
        if name.isupper() and not value.startswith("closedloop.")
    }
    assert len(foreign) > 30
    assert {
        name: value
        for name, value in foreign.items()
        if value not in conventions and value not in NOT_IN_SEMCONV
    } == {}
