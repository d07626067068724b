"""Routing: sticky across processes and hash seeds, exact shares, minimal movement when
shares change, context set on real spans, and the raw unit never kept."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import hashlib
import json
import logging
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from scipy import stats

import closedloop
from _support.spans import client_for, llm_spans
from closedloop.experiments._prompt_errors import PromptVariablesError, UnknownPromptError
from closedloop.experiments._registry import PromptRegistry
from closedloop.experiments._routing import bucket_ranges
from closedloop.instrumentation._context import current_call_context

GOOD = Path(__file__).parent / "data" / "prompts"
TICKET = {"product": "Acme", "ticket": "I was charged twice"}
EXPERIMENT = "exp-7"
PINNED = [4022, 4819, 4970, 6056, 2386]
TAGS = (
    "gen_ai.prompt.name",
    "gen_ai.prompt.version",
    "closedloop.experiment",
    "closedloop.variant",
)


def bucket_of(unit: str, experiment: str = EXPERIMENT) -> int:
    """The documented formula, written out independently of closedloop's code."""
    digest = hashlib.blake2b(unit.encode(), key=experiment.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000


def write_prompt(directory: Path, shares: dict[str, float | None], **statuses: str) -> None:
    """``directory``/chat.yaml: v1 in production, each named version testing at its share
    (or the status given in ``statuses``)."""
    versions = {"v1": {"status": "production"}}
    for name, share in shares.items():
        versions[name] = {"status": "testing", "share": share}
    for name, status in statuses.items():
        versions[name] = {"status": status}
    for version in versions.values():
        version.update(model="gpt-4o-mini", messages=[{"role": "user", "content": "{text}"}])
    document = {"name": "chat", "experiment": EXPERIMENT, "variables": ["text"]}
    (directory / "chat.yaml").write_text(yaml.safe_dump({**document, "versions": versions}))


def versions_of(registry: PromptRegistry, units: list[str], prompt: str = "chat") -> list[str]:
    variables = {"text": "hi"} if prompt == "chat" else TICKET
    chosen = []
    for unit in units:
        with registry.select(prompt, unit=unit, variables=variables) as choice:
            chosen.append(choice.version)
    return chosen


UNITS = [f"user-{i}" for i in range(100_000)]

_SCRIPT = """
import json, sys
from closedloop.experiments._registry import PromptRegistry
registry = PromptRegistry(sys.argv[1], poll_interval_s=None)
variables = {"product": "p", "ticket": "t"}
chosen = []
for i in range(3000):
    with registry.select("triage", unit=f"user-{i}", variables=variables) as choice:
        chosen.append(choice.version)
print(json.dumps(chosen))
"""


def test_same_unit_same_version_in_other_processes_and_hash_seeds():
    runs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(GOOD)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out))
    here = versions_of(PromptRegistry(GOOD), UNITS[:3000], "triage")
    assert runs[0] == runs[1] == here
    assert set(here) == {"v3", "v4"}


def test_buckets_follow_the_documented_formula():
    """Pinned values: a change of hash, key or encoding would reshuffle every live user."""
    from closedloop.experiments._routing import bucket

    assert [bucket("triage-2025-06", f"user-{i}") for i in range(5)] == [
        bucket_of(f"user-{i}", "triage-2025-06") for i in range(5)
    ]
    assert [bucket_of(f"user-{i}", "triage-2025-06") for i in range(5)] == PINNED


def test_shares_are_within_binomial_bounds(tmp_path):
    write_prompt(tmp_path, {"v2": 12.5, "v3": 30})
    chosen = versions_of(PromptRegistry(tmp_path), UNITS)
    for version, share in {"v1": 0.575, "v2": 0.125, "v3": 0.30}.items():
        low, high = stats.binom.interval(0.999, len(UNITS), share)
        assert low <= chosen.count(version) <= high, (version, chosen.count(version))


def test_raising_a_share_moves_exactly_the_added_buckets_from_production(tmp_path):
    write_prompt(tmp_path, {"v2": 20})
    registry = PromptRegistry(tmp_path, poll_interval_s=None)
    before = versions_of(registry, UNITS)
    write_prompt(tmp_path, {"v2": 30})
    registry.reload()
    after = versions_of(registry, UNITS)
    moved = {u for u, old, new in zip(UNITS, before, after, strict=True) if old != new}
    assert moved == {u for u in UNITS if 7000 <= bucket_of(u) < 8000}
    assert {(old, new) for old, new in zip(before, after, strict=True) if old != new} == {
        ("v1", "v2")
    }
    assert 9_000 < len(moved) < 11_000  # about 10 % of all units, not 10 % of the rest


def test_retiring_a_version_sends_its_units_to_production_only(tmp_path):
    write_prompt(tmp_path, {"v2": 20, "v3": 15})
    registry = PromptRegistry(tmp_path, poll_interval_s=None)
    before = versions_of(registry, UNITS)
    write_prompt(tmp_path, {"v2": 20}, v3="retired")
    registry.reload()
    after = versions_of(registry, UNITS)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed == [("v3", "v1")] * before.count("v3")
    assert "v3" not in after


def test_a_new_later_candidate_takes_units_from_production_only(tmp_path):
    write_prompt(tmp_path, {"v2": 20})
    registry = PromptRegistry(tmp_path, poll_interval_s=None)
    before = versions_of(registry, UNITS[:20_000])
    write_prompt(tmp_path, {"v2": 20, "v10": 5})  # v10 sorts after v2 (natural order)
    registry.reload()
    after = versions_of(registry, UNITS[:20_000])
    assert {(o, n) for o, n in zip(before, after, strict=True) if o != n} == {("v1", "v10")}


def test_layout_stacks_testing_versions_from_the_top_in_natural_order():
    assert bucket_ranges("v1", [("v10", 500), ("v2", 2000)]) == {
        "v2": range(8000, 10000),
        "v10": range(7500, 8000),
        "v1": range(0, 7500),
    }
    # The documented limit: changing an earlier version shifts the later ones.
    assert bucket_ranges("v1", [("v10", 500), ("v2", 1000)])["v10"] == range(8500, 9000)


def test_selection_renders_the_chosen_version_and_its_shadows():
    registry = PromptRegistry(GOOD)
    unit = next(u for u in UNITS if bucket_of(u, "triage-2025-06") >= 8000)
    with registry.select("triage", unit=unit, variables=TICKET) as choice:
        assert (choice.prompt, choice.version, choice.experiment, choice.variant) == (
            "triage",
            "v4",
            "triage-2025-06",
            "testing",
        )
        assert choice.model == "gpt-4o-mini"
        assert dict(choice.parameters) == {"temperature": 0.0, "max_tokens": 200, "seed": 7}
        assert choice.messages == [
            {"role": "system", "content": "You triage Acme tickets. Reply with a single word."},
            {"role": "user", "content": "Ticket: I was charged twice"},
        ]
        [shadow] = choice.shadows
        assert (shadow.version, shadow.variant, shadow.model) == ("v5", "shadow", "gpt-4.1-mini")
        assert shadow.messages[0] == {"role": "system", "content": "Classify this Acme ticket."}
    with pytest.raises(AttributeError):
        choice.served = choice.served  # type: ignore[misc]


def test_retired_versions_never_serve():
    chosen = versions_of(PromptRegistry(GOOD), UNITS[:20_000], "triage")
    assert set(chosen) == {"v3", "v4"}


def test_select_tags_real_spans_and_undoes_it_after_the_block(server, exporter, instrumented):
    client = client_for(server)
    registry = PromptRegistry(GOOD)
    with registry.select("triage", unit="alice", variables=TICKET) as choice:
        client.chat.completions.create(
            model=choice.model, messages=choice.messages, **choice.parameters
        )
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "after"}]
    )
    with (
        closedloop.context(user_id="bob", turn=2),
        registry.select("triage", unit="bob", variables=TICKET) as nested,
    ):
        client.chat.completions.create(model=nested.model, messages=nested.messages)
    inside, after, in_outer_context = llm_spans(exporter)
    assert {key: inside.attributes[key] for key in TAGS} == {
        "gen_ai.prompt.name": "triage",
        "gen_ai.prompt.version": choice.version,
        "closedloop.experiment": "triage-2025-06",
        "closedloop.variant": choice.variant,
    }
    assert inside.attributes["gen_ai.request.model"] == choice.model
    assert not set(TAGS) & set(after.attributes)
    assert in_outer_context.attributes["gen_ai.prompt.version"] == nested.version
    assert in_outer_context.attributes["closedloop.turn"] == 2  # the enclosing context stays
    assert "user.hash" in in_outer_context.attributes


def reachable(*roots: object) -> list[object]:
    """Every object reachable from ``roots``, short of modules, classes and functions (which
    lead to the whole interpreter)."""
    seen: dict[int, object] = {}
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (types.ModuleType, type, types.FunctionType)):
            continue
        seen[id(obj)] = obj
        stack.extend(gc.get_referents(obj))
    return list(seen.values())


def test_the_raw_unit_is_not_kept_or_logged(caplog):
    unit = "alice@example.com"
    registry = PromptRegistry(GOOD)
    caplog.set_level(logging.DEBUG)
    scope = registry.select("triage", unit=unit, variables=TICKET)
    with scope as choice:
        inside = reachable(registry, scope, choice)
    after = reachable(registry, scope, choice)
    assert len(inside) > 50  # the walk does reach the prompts, arms and selection
    assert not [obj for obj in inside + after if obj in (unit, unit.encode())]
    assert unit not in caplog.text
    with pytest.raises(TypeError, match=r"^unit must be a str, not int") as caught:
        registry.select("triage", unit=1234567, variables=TICKET)  # type: ignore[arg-type]
    assert "1234567" not in str(caught.value)


def test_variables_must_be_exactly_those_declared():
    registry = PromptRegistry(GOOD)
    with pytest.raises(PromptVariablesError) as caught:
        registry.select("triage", unit="u", variables={"product": "Acme", "tikcet": "x"})
    assert str(caught.value) == (
        f"select('triage'): variables lack ticket and have tikcet, which "
        f"{GOOD / 'triage.yaml'} does not declare (did you mean ticket?); pass exactly the "
        "variables the file declares (product, ticket), so every version can render"
    )
    with pytest.raises(PromptVariablesError, match="lack product, ticket"):
        registry.select("triage", unit="u")


def test_unknown_prompt_names_the_known_ones():
    with pytest.raises(UnknownPromptError) as caught:
        PromptRegistry(GOOD).select("triag", unit="u", variables=TICKET)
    assert str(caught.value) == (
        f"no prompt 'triag' in {GOOD} (it has summarize, triage); did you mean 'triage'?"
    )


def stepped_in_fresh_contexts(scope: object) -> list[str]:
    """A streaming body holding the block, stepped as Starlette's ``iterate_in_threadpool``
    does: each ``next()`` in a fresh ``copy_context()``, so the block ends in another
    context than it began."""

    def body() -> Iterator[str]:
        with scope as choice:  # type: ignore[attr-defined]
            yield choice.version
            yield choice.version

    stream = body()
    chunks = []
    while True:
        try:
            chunks.append(contextvars.copy_context().run(next, stream))
        except StopIteration:
            return chunks


def test_a_select_block_may_end_in_another_context():
    registry = PromptRegistry(GOOD, poll_interval_s=None)
    scope = registry.select("triage", unit="u1", variables=TICKET)
    assert stepped_in_fresh_contexts(scope) == ["v3", "v3"]
    assert current_call_context() is None

    async def enter(scope: object) -> None:
        scope.__enter__()  # type: ignore[attr-defined]

    async def enter_and_exit_in_two_tasks() -> object:
        scope = registry.select("triage", unit="u1", variables=TICKET)
        await asyncio.create_task(enter(scope))
        await asyncio.create_task(scope.__aexit__(None, None, None))  # no ValueError
        return current_call_context()

    assert asyncio.run(enter_and_exit_in_two_tasks()) is None

    def own_layer_ended_elsewhere() -> None:
        """Ended in a copy of the context where its layer is current: the parent is set
        back there; the context it began in is not reached."""
        scope = registry.select("triage", unit="u1", variables=TICKET)
        scope.__enter__()
        elsewhere = contextvars.copy_context()
        elsewhere.run(scope.__exit__, None, None, None)
        assert elsewhere.run(current_call_context) is None
        assert current_call_context() is not None

    contextvars.copy_context().run(own_layer_ended_elsewhere)


def test_async_with_select_tags_the_block_and_undoes_it():
    registry = PromptRegistry(GOOD, poll_interval_s=None)

    async def handler() -> tuple[str, object]:
        async with registry.select("triage", unit="u1", variables=TICKET) as choice:
            inside = current_call_context()
            assert inside is not None
            tags = inside.attributes["gen_ai.prompt.version"]
        assert tags == choice.version
        return tags, current_call_context()

    assert asyncio.run(handler()) == ("v3", None)
