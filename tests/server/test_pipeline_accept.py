"""``Pipeline.accept`` on a real chDB store: what it takes is stored and sampled, and a
span it cannot store as a row is reported back, never acknowledged as stored."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan

import closedloop.store
from closedloop.server import Pipeline, ServeConfig
from server.support import sdk_spans


class Unprintable:
    """An attribute value no row can hold: rendering it raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no text for this value")

    __str__ = __repr__


def with_attribute(span: ReadableSpan, value: object) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={**(span.attributes or {}), "odd": value},
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def test_a_span_that_cannot_be_a_row_is_counted_back_and_its_neighbours_stored(
    tmp_path: Path,
) -> None:
    first, second, third = sdk_spans()[:3]
    spans = [first, with_attribute(second, Unprintable()), third]
    pipeline = Pipeline(
        ServeConfig(store_url=f"chdb://{tmp_path}/store", state_dir=tmp_path / "state")
    )
    try:
        acceptance = pipeline.accept_spans(spans)
        stats = pipeline.stats()
    finally:
        pipeline.close()

    assert (acceptance.refused, acceptance.unmapped) == (False, 1)
    assert stats.spans_accepted == 2
    assert stats.exporter.dropped_spans == 1
    with closedloop.store.connect(f"chdb://{tmp_path}/store") as store:
        rows = store.query("SELECT SpanId FROM closedloop.otel_traces_recent")
    assert {row["SpanId"] for row in rows} == {
        f"{span.context.span_id:016x}" for span in (first, third)
    }
