"""The pages about single records and the pipeline: Feedback (the feedback table with
filters, each row linking to its trace), Trace (span tree on a timeline, attributes,
redacted content, feedback) and Sampling (received, kept, dropped, rescued over time)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from closedloop.feedback import KINDS
from closedloop.server._query import Handler
from closedloop.server._ui_calls import ask
from closedloop.server._ui_forms import form, select, text_input
from closedloop.server._ui_html import NOTHING, api_links, error_box, esc, number, table
from closedloop.server._ui_svg import Series, legend, line_chart
from closedloop.server._ui_timeline import instant_ns, timeline, tree_order

FEEDBACK_PAGE: Final = 50
CONTENT_ATTRIBUTES: Final = (
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
)
"""Where the instrumentation puts (redacted) content; shown apart from other attributes."""
SAMPLING_FIELDS: Final = ("received", "kept", "dropped", "rescued")


def feedback(api: Mapping[str, Handler], values: Mapping[str, str]) -> str:
    query = {
        "prompt": values.get("prompt"),
        "version": values.get("version"),
        "type": values.get("type"),
        "name": values.get("name"),
        "from": values.get("day"),
        "to": values.get("day"),
        "limit": str(FEEDBACK_PAGE),
        "cursor": values.get("cursor"),
    }
    answer = ask(api["/api/feedback"], "/api/feedback", query)
    controls = [
        text_input("prompt", "Prompt", values),
        text_input("version", "Version", values),
        select("type", "Type", [("", "any"), *((k, k) for k in KINDS)], values.get("type", "")),
        text_input("name", "Name", values),
        text_input("day", "Day", values, "date"),
    ]
    if not answer.ok:
        return form("/feedback", controls) + error_box(answer.error) + api_links([answer.url])
    rows = [_feedback_row(row) for row in answer.body["rows"]]
    headers = ("Time", "Prompt", "Version", "Model", "Type", "Name", "Value", "Label", "Trace")
    following = answer.body["next_cursor"]
    more = ""
    if following:
        kept = {k: v for k, v in values.items() if k != "cursor" and v}
        link = "/feedback?" + urlencode({**kept, "cursor": following})
        more = f'<p><a rel="next" href="{esc(link)}">Next page</a></p>'
    empty = "" if rows else '<p class="empty">No feedback rows match these filters.</p>'
    return (
        form("/feedback", controls)
        + table(headers, rows, css="feedback")
        + empty
        + more
        + api_links([answer.url])
    )


def _feedback_row(row: Mapping[str, Any]) -> str:
    metadata = row["metadata"]
    value = row["feedback_value"] or {}
    trace_id = metadata["trace_id"]
    return (
        f'<tr data-trace-id="{esc(trace_id)}">'
        f"<td>{esc(row['timestamp'])}</td><td>{esc(metadata['prompt_name'])}</td>"
        f"<td>{esc(row['prompt_version'])}</td><td>{esc(row['model'])}</td>"
        f"<td>{esc(row['feedback_type'] or NOTHING)}</td><td>{esc(value.get('name', NOTHING))}</td>"
        f"{number(value.get('value'), 'number', data_field='value')}"
        f"<td>{esc(value.get('label') or '')}</td>"
        f'<td><a class="trace" href="/trace/{esc(trace_id)}">'
        f"{esc(trace_id[:12])}\u2026</a></td></tr>"
    )


def trace(api: Mapping[str, Handler], trace_id: str) -> tuple[int, str]:
    path = f"/api/traces/{trace_id}"
    answer = ask(api["/api/traces/{trace_id}"], path, path_params={"trace_id": trace_id})
    if not answer.ok:
        return answer.status, error_box(answer.error)
    spans = answer.body["spans"]
    starts = [instant_ns(span["start"]) for span in spans]
    ends = [s + span["duration_ns"] for s, span in zip(starts, spans, strict=True)]
    duration_ms = (max(ends) - min(starts)) / 1e6 if spans else 0.0
    summary = (
        '<p class="summary">Trace '
        f'<code data-field="trace_id">{esc(answer.body["trace_id"])}</code>: '
        + number(len(spans), "count", "span", data_field="spans")
        + " spans over "
        + number(duration_ms, "ms", "span", data_field="duration_ms")
        + ", "
        + number(len(answer.body["feedback"]), "count", "span", data_field="feedback")
        + " feedback signals.</p>"
    )
    chart = timeline(spans) if spans else '<p class="empty">No spans: only feedback is stored.</p>'
    details = "".join(_span_details(depth, span) for depth, span in tree_order(spans))
    return 200, (
        summary
        + f'<section class="panel"><h2>Timeline</h2>{chart}</section>'
        + _trace_feedback(answer.body["feedback"])
        + f"<h2>Spans</h2>{details}"
        + api_links([answer.url])
    )


def _trace_feedback(signals: list[Mapping[str, Any]]) -> str:
    rows = [
        f"<tr><td>{esc(s['timestamp'])}</td><td>{esc(s['kind'])}</td><td>{esc(s['name'])}</td>"
        f"{number(s['value'], 'number', data_field='value')}<td>{esc(s['label'])}</td>"
        f"<td>{esc(s['explanation'])}</td><td>{esc(s['source'])}</td>"
        f"<td>{_span_link(s['call_span_id'])}</td></tr>"
        for s in signals
    ]
    headers = ("Time", "Kind", "Name", "Value", "Label", "Explanation", "Source", "About call")
    body = (
        table(headers, rows, css="trace-feedback") if rows else '<p class="empty">No feedback.</p>'
    )
    return f"<h2>Feedback</h2>{body}"


def _span_link(span_id: str | None) -> str:
    if not span_id:
        return NOTHING
    return f'<a href="#span-{esc(span_id)}">{esc(span_id)}</a>'


def _span_details(depth: int, span: Mapping[str, Any]) -> str:
    attributes = span["attributes"]
    content = "".join(
        f"<h4>{esc(name)}</h4><pre>{esc(_pretty(attributes[name]))}</pre>"
        for name in CONTENT_ATTRIBUTES
        if attributes.get(name)
    )
    rows = [
        f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>'
        for k, v in sorted(attributes.items())
        if k not in CONTENT_ATTRIBUTES
    ]
    events = "".join(
        f"<li>{esc(e['timestamp'])} <strong>{esc(e['name'])}</strong> "
        f"<code>{esc(json.dumps(e['attributes'], sort_keys=True))}</code></li>"
        for e in span["events"]
    )
    status = span["status"]
    return (
        f'<section class="span" id="span-{esc(span["span_id"])}" data-depth="{depth}">'
        f'<h3>{esc(span["name"])}</h3><p class="meta">{esc(span["kind"])} \u00b7 '
        f"{esc(span['service_name'])} \u00b7 status {esc(status['code'])}"
        f"{': ' + esc(status['message']) if status['message'] else ''} \u00b7 "
        + number(span["duration_ns"] / 1e6, "ms", "span")
        + f" \u00b7 from {esc(span['start'])} \u00b7 "
        f"{esc(span['tier'])} tier \u00b7 span {esc(span['span_id'])}</p>"
        + (
            f'<div class="content"><h4 class="sr-only">Content (redacted)</h4>{content}</div>'
            if content
            else ""
        )
        + f"<details><summary>{len(rows)} attributes</summary>"
        + f'<table class="attributes"><tbody>{"".join(rows)}</tbody></table></details>'
        + (f'<ul class="events">{events}</ul>' if events else "")
        + "</section>"
    )


def _pretty(text: str) -> str:
    """JSON content (messages) indented; anything else as stored."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def sampling(api: Mapping[str, Handler], values: Mapping[str, str]) -> str:
    window = {"from": values.get("from"), "to": values.get("to")}
    bucket = values.get("bucket", "hour")
    totals = ask(api["/api/sampling"], "/api/sampling", window)
    series = ask(api["/api/sampling/series"], "/api/sampling/series", {**window, "bucket": bucket})
    controls = [
        text_input("from", "From", values, "date"),
        text_input("to", "To", values, "date"),
        select("bucket", "Per", [("hour", "hour"), ("day", "day")], bucket),
    ]
    for answer in (totals, series):
        if not answer.ok:
            return form("/sampling", controls) + error_box(answer.error)
    body = totals.body
    total_rows = [
        f'<tr data-unit="{unit}"><th scope="row">{unit}</th>'
        + "".join(number(body[unit][f], "count", data_field=f) for f in SAMPLING_FIELDS)
        + "</tr>"
        for unit in ("spans", "traces")
    ]
    points = series.body["points"]
    labels = [_bucket_label(point["start"], bucket) for point in points]
    lines = [Series(f, [point[f] for point in points]) for f in SAMPLING_FIELDS]
    point_rows = [
        f'<tr data-start="{esc(point["start"])}"><td>{esc(point["start"])}</td>'
        + "".join(number(point[f], "count", data_field=f) for f in SAMPLING_FIELDS)
        + "</tr>"
        for point in points
    ]
    return (
        form("/sampling", controls)
        + table(
            ("", *SAMPLING_FIELDS),
            total_rows,
            caption="In the store, for the window",
            css="sampling-totals",
        )
        + f'<section class="panel"><h2>Spans per {esc(bucket)}</h2>'
        + line_chart(
            f"Spans received, kept, dropped and rescued per {bucket}", labels, lines, "count"
        )
        + legend(list(SAMPLING_FIELDS))
        + "<details><summary>Data</summary>"
        + table(("Start", *SAMPLING_FIELDS), point_rows, css="sampling-series")
        + "</details></section>"
        + _by_rule(body)
        + api_links([totals.url, series.url])
    )


def _bucket_label(start: str, bucket: str) -> str:
    return start[5:10] if bucket == "day" else start[5:13].replace("T", " ") + "h"


def _by_rule(body: Mapping[str, Any]) -> str:
    """What each sampling rule decided since serve started (the store does not record it)."""
    live = body["since_start"]
    why = body["not_available"].get("by_rule", "")
    if live is None:
        missing = body["not_available"].get("since_start", "")
        return f'<h2>By rule</h2><p class="note">{esc(missing)}</p>'
    decisions = ("sampled", "not_sampled", "dropped", "errors")
    rows = [
        f'<tr data-rule="{esc(rule)}"><th scope="row">{esc(rule)}</th>'
        + "".join(number(counts[d], "count", data_field=d) for d in decisions)
        + "</tr>"
        for rule, counts in live["by_rule"].items()
    ]
    return (
        "<h2>By rule, since serve started</h2>"
        + table(("Rule", *decisions), rows, css="by-rule")
        + f'<p class="note">{esc(why)}. Rescued since start: '
        + number(live["rescued"]["traces"], "count", "span", data_field="rescued_traces")
        + " traces.</p>"
    )
