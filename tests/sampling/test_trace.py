"""SpanView.of: what the policies see of an SDK span, typed and numbered as in OTLP."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode

from closedloop.sampling import SpanView

from .support import sdk_provider


def test_span_view_of_keeps_otlp_types_kinds_status_and_events() -> None:
    provider, exporter = sdk_provider(
        trace_ids=[0x0AF7651916CD43DD8448EB211C80319C], resource={"service.name": "svc"}
    )
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_attribute("i", 3)
            child.set_attribute("f", 3.0)
            child.set_attribute("b", True)
            child.set_attribute("s", "x")
            child.set_attribute("seq", [1, 2])
            child.add_event("exception", {"code": 7})
    child_span, root_span = exporter.get_finished_spans()
    child_view, root_view = SpanView.of(child_span), SpanView.of(root_span)

    assert root_view.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert (root_view.kind, child_view.kind) == (2, 3)  # OTLP SERVER, CLIENT
    assert (root_view.status, child_view.status) == (2, 0)  # ERROR, UNSET
    assert root_view.parent_span_id == 0
    assert child_view.parent_span_id == root_view.span_id
    assert child_view.resource["service.name"] == "svc"
    attributes = child_view.attributes
    assert type(attributes["i"]) is int and type(attributes["f"]) is float
    assert attributes["b"] is True and attributes["s"] == "x"
    assert tuple(attributes["seq"]) == (1, 2)
    assert child_view.events[0][0] == "exception"
    assert dict(child_view.events[0][1]) == {"code": 7}
    assert child_view.start_ns == child_span.start_time
    assert child_view.end_ns == child_span.end_time
    assert child_view.source is child_span
