"""What the policies read: each policy type names the attribute keys it reads (an app's own
policy says nothing, so views keep everything), and the sampler decides every trace the same
on views that hold only those keys as on full views."""

from __future__ import annotations

from typing import Any

from _support.traffic import generate_traffic
from closedloop.sampling import AttributesRead, Decision, Policy, TailSampler, load
from closedloop.sampling._config import SamplerConfig
from closedloop.sampling._trace import BufferedTrace
from closedloop.server._received import ReceivedSpan, received_spans
from sampling.support import ERRORS, config, policy
from server.support import protobuf_request

EVERY_KIND = (
    policy("string_attribute", key="s.key", values=["x"]),
    policy("numeric_attribute", key="n.key", min_value=1, max_value=5),
    policy("boolean_attribute", key="b.key", value=True),
    policy(
        "ottl_condition",
        span=['attributes["o.span"] == "x" and resource.attributes["o.resource"] != nil'],
        spanevent=['attributes["o.event"] == 1 or name == "e"'],
    ),
    policy(
        "and",
        and_sub_policy=[
            {"name": "a0", **policy("string_attribute", key="and.key", values=["y"])},
            {"name": "a1", **ERRORS},
        ],
    ),
    policy(
        "drop",
        drop_sub_policy=[
            {"name": "d0", **policy("boolean_attribute", key="drop.key", value=True)},
        ],
    ),
    policy(
        "not",
        not_sub_policy={
            "name": "n0",
            **policy("numeric_attribute", key="not.key", min_value=1, max_value=2),
        },
    ),
    policy("probabilistic", sampling_percentage=30),
    policy("latency", threshold_ms=100),
    ERRORS,
)


class Mine(Policy):
    """An app's own policy: it may read any attribute."""

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return Decision.NOT_SAMPLED


def test_each_policy_type_names_the_keys_it_reads() -> None:
    keys = {"s.key", "n.key", "b.key", "and.key", "drop.key", "not.key"}
    assert config(*EVERY_KIND).attributes_read() == AttributesRead(
        span=frozenset(keys | {"o.span"}),
        resource=frozenset(keys | {"o.resource"}),
        event=frozenset({"o.event"}),
    )


def test_the_packaged_policy_reads_the_new_user_flag_only() -> None:
    flag = frozenset({"closedloop.user.new"})
    assert load().attributes_read() == AttributesRead(span=flag, resource=flag)


def test_an_apps_own_policy_keeps_every_attribute() -> None:
    loaded = load()
    mine = SamplerConfig(policies=(*loaded.policies, Mine("mine")))
    assert mine.attributes_read() is None


def decisions(sampler_config: SamplerConfig, reads: AttributesRead | None) -> dict[Any, bool]:
    """Which traces of generated traffic the sampler keeps, on views of the receiver that
    hold the attributes in ``reads`` (all when None)."""
    kept: set[bytes] = set()
    sampler = TailSampler(
        sampler_config,
        lambda views: kept.update(
            view.source.row for view in views if isinstance(view.source, ReceivedSpan)
        ),
    )
    spans = generate_traffic(300, seed=23, days=1).spans
    reception = received_spans(protobuf_request(spans), with_sdk_spans=False, reads=reads)
    if reads is not None:
        assert all(set(view.attributes) <= reads.span for view in reception.views)
    sampler.ingest(reception.views)
    sampler.drain()
    return {view.trace_id: view.source.row in kept for view in reception.views}  # type: ignore[union-attr]


TRAFFIC_KEYS = config(
    policy("string_attribute", key="gen_ai.prompt.version", values=["v3"]),
    policy(
        "and",
        and_sub_policy=[
            {
                "name": "a0",
                **policy("string_attribute", key="gen_ai.request.model", values=["o3-mini"]),
            },
            {
                "name": "a1",
                **policy(
                    "numeric_attribute",
                    key="gen_ai.usage.output_tokens",
                    min_value=0,
                    max_value=200,
                ),
            },
        ],
    ),
    policy("ottl_condition", span=['attributes["closedloop.user.new"] == true']),
)
"""Policies on keys the generated traffic has, each matching some traces and not others."""


def test_decisions_on_views_of_the_keys_read_are_the_decisions_on_full_views() -> None:
    for sampler_config in (load(), TRAFFIC_KEYS):
        reads = sampler_config.attributes_read()
        assert reads is not None
        full = decisions(sampler_config, None)
        assert decisions(sampler_config, reads) == full
        assert any(full.values()) and not all(full.values())
