"""The pages about prompt versions: Overview (metrics over time), Prompts (one row per
version, sortable, with the registry's status and share) and Compare (two versions with
``compare``'s statistics)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from closedloop.server._query import Handler
from closedloop.server._ui_calls import Answer, ask
from closedloop.server._ui_forms import form, select, text_input
from closedloop.server._ui_html import (
    NOTHING,
    Kind,
    api_links,
    error_box,
    esc,
    number,
    shown,
    table,
)
from closedloop.server._ui_svg import Interval, Series, interval_chart, legend, line_chart

OVERVIEW_METRICS: Final[tuple[tuple[str, str, Kind], ...]] = (
    ("calls", "Calls", "count"),
    ("error_rate", "Error rate", "rate"),
    ("total_cost_usd", "Cost", "usd"),
    ("latency_p95_ms", "p95 latency", "ms"),
    ("task_success_rate", "Task success rate", "rate"),
    ("thumbs_up_rate", "Thumbs-up rate", "rate"),
    ("reopen_rate", "Reopen rate", "rate"),
    ("escalation_rate", "Escalation rate", "rate"),
)
PROMPT_COLUMNS: Final[tuple[tuple[str, str, Kind | None], ...]] = (
    ("prompt_name", "Prompt", None),
    ("prompt_version", "Version", None),
    ("status", "Status", None),
    ("share_percent", "Share", None),
    ("calls", "Calls", "count"),
    ("error_rate", "Error rate", "rate"),
    ("latency_p95_ms", "p95 latency", "ms"),
    ("total_cost_usd", "Cost", "usd"),
    ("cost_per_priced_call_usd", "Cost per call", "usd"),
    ("task_success_rate", "Task success", "rate"),
    ("thumbs_up_rate", "Thumbs up", "rate"),
    ("reopen_rate", "Reopened", "rate"),
    ("escalation_rate", "Escalated", "rate"),
)
UNKNOWN: Final = "unknown"


def series_name(prompt: str, version: str) -> str:
    return f"{prompt} {version}"


def overview(api: Mapping[str, Handler], values: Mapping[str, str]) -> str:
    answer = ask(api["/api/overview"], "/api/overview", _pick(values, "prompt", "from", "to"))
    controls = [
        text_input("prompt", "Prompt", values),
        text_input("from", "From", values, "date"),
        text_input("to", "To", values, "date"),
    ]
    if not answer.ok:
        return form("/", controls) + error_box(answer.error)
    series = answer.body["series"]
    days = sorted({point["day"] for s in series for point in s["points"]})
    names = [series_name(s["prompt"], s["version"]) for s in series]
    panels = []
    for metric, title, kind in OVERVIEW_METRICS:
        lines: list[Series] = []
        rows: list[str] = []
        for s, name in zip(series, names, strict=True):
            by_day = {point["day"]: point[metric] for point in s["points"]}
            lines.append(Series(name, [by_day.get(day) for day in days]))
            rows.extend(
                f"<tr><td>{esc(point['day'])}</td><td>{esc(name)}</td>"
                + number(point[metric], kind, data_metric=metric, data_series=name, data_day=day)
                + "</tr>"
                for point in s["points"]
                for day in (point["day"],)
            )
        panels.append(
            f'<section class="panel" data-metric="{metric}"><h2>{esc(title)}</h2>'
            f"{line_chart(f'{title} per day, one line per prompt version', days, lines, kind)}"
            f"{legend(names)}<details><summary>Data</summary>"
            f"{table(('Day', 'Prompt version', title), rows)}</details></section>"
        )
    body = '<div class="panels">' + "".join(panels) + "</div>" if series else _no_calls()
    return form("/", controls) + body + api_links([answer.url])


def _no_calls() -> str:
    return '<p class="empty">No LLM calls in the store for this window yet.</p>'


def _pick(values: Mapping[str, str], *names: str) -> dict[str, str | None]:
    return {name: values.get(name) for name in names}


def prompts(api: Mapping[str, Handler], values: Mapping[str, str]) -> str:
    answer = ask(api["/api/versions"], "/api/versions", _pick(values, "prompt", "from", "to"))
    controls = [
        text_input("prompt", "Prompt", values),
        text_input("from", "From", values, "date"),
        text_input("to", "To", values, "date"),
    ]
    if not answer.ok:
        return form("/prompts", controls) + error_box(answer.error)
    known = {name for name, _, _ in PROMPT_COLUMNS}
    asked = values.get("sort", "")
    sort = asked if asked in known else "prompt_name"
    descending = values.get("order") == "desc"
    rows = _sorted(answer.body["rows"], sort, descending)
    headers = "".join(
        _sort_header(name, title, sort, descending, values) for name, title, _ in PROMPT_COLUMNS
    )
    registry = answer.body["registry"]
    body = "".join(_version_row(row) for row in rows)
    note = (
        ""
        if registry
        else '<p class="note">Status and share are unknown: start serve with '
        "<code>--prompts DIR</code> (the app's prompt files) to see them.</p>"
    )
    return (
        form("/prompts", controls)
        + note
        + f'<table class="versions"><thead><tr>{headers}<th scope="col">Compare</th></tr></thead>'
        f"<tbody>{body}</tbody></table>" + ("" if rows else _no_calls()) + api_links([answer.url])
    )


def _sorted(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Sorted by ``key`` with missing values last either way."""
    present = [row for row in rows if row[key] is not None]
    missing = [row for row in rows if row[key] is None]
    return sorted(present, key=lambda row: row[key], reverse=descending) + missing


def _sort_header(
    name: str, title: str, sort: str, descending: bool, values: Mapping[str, str]
) -> str:
    order = "asc" if name == sort and descending else "desc" if name == sort else "asc"
    query = urlencode({**_kept(values, "prompt", "from", "to"), "sort": name, "order": order})
    state = ""
    if name == sort:
        state = f' aria-sort="{"descending" if descending else "ascending"}"'
    return (
        f'<th scope="col" data-column="{name}"{state}>'
        f'<a href="/prompts?{esc(query)}">{esc(title)}</a></th>'
    )


def _kept(values: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: values[name] for name in names if values.get(name)}


def _version_row(row: Mapping[str, Any]) -> str:
    cells = []
    for name, _, kind in PROMPT_COLUMNS:
        if kind is not None:
            cells.append(number(row[name], kind, data_column=name))
        elif name == "status":
            cells.append(f'<td data-column="status">{esc(row["status"] or UNKNOWN)}</td>')
        elif name == "share_percent":
            share = row["share_percent"]
            text = UNKNOWN if share is None else f"{share:g} %"
            value = "null" if share is None else repr(float(share))
            cells.append(
                '<td class="num" data-column="share_percent" '
                f'data-value="{esc(value)}">{esc(text)}</td>'
            )
        else:
            cells.append(f'<td data-column="{name}">{esc(row[name])}</td>')
    link = "/compare?" + urlencode(
        {"prompt": row["prompt_name"], "candidate": row["prompt_version"]}
    )
    cells.append(f'<td><a href="{esc(link)}">compare</a></td>')
    return (
        f'<tr data-prompt="{esc(row["prompt_name"])}" data-version="{esc(row["prompt_version"])}">'
        f"{''.join(cells)}</tr>"
    )


def compare(api: Mapping[str, Handler], values: Mapping[str, str]) -> str:
    versions = ask(api["/api/version_list"], "/api/version_list")
    if not versions.ok:
        return error_box(versions.error)
    chosen = _choice(versions.body["rows"], values)
    if chosen is None:
        return '<p class="empty">Compare needs a prompt with two versions that have calls.</p>'
    prompt, baseline, candidate, options = chosen
    unit = values.get("unit", "user")
    controls = [
        select(
            "prompt",
            "Prompt",
            [(p, p) for p in sorted({r["prompt_name"] for r in versions.body["rows"]})],
            prompt,
        ),
        select("baseline", "Baseline", options, baseline),
        select("candidate", "Candidate", options, candidate),
        select("unit", "Unit", [("user", "user"), ("call", "call")], unit),
        text_input("from", "From", values, "date"),
        text_input("to", "To", values, "date"),
    ]
    query = {
        "prompt": prompt,
        "baseline": baseline,
        "candidate": candidate,
        "unit": unit,
        "from": values.get("from"),
        "to": values.get("to"),
    }
    answer = ask(api["/api/compare"], "/api/compare", query)
    picker = form("/compare", controls, "Compare")
    if not answer.ok:
        return picker + error_box(answer.error) + api_links([versions.url, answer.url])
    return picker + _comparison(answer) + api_links([versions.url, answer.url])


def _choice(
    rows: Sequence[Mapping[str, Any]], values: Mapping[str, str]
) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    """The prompt and versions to compare: as asked, else the production version (or the
    one with most calls) against the testing one (or the next by calls)."""
    by_prompt: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_name"], []).append(row)
    candidates = [p for p, found in sorted(by_prompt.items()) if len(found) > 1]
    prompt = values.get("prompt")
    if prompt not in by_prompt:
        if not candidates:
            return None
        prompt = candidates[0]
    found = sorted(by_prompt[prompt], key=lambda row: (-row["calls"], row["prompt_version"]))
    names = [row["prompt_version"] for row in found]
    status = {row["prompt_version"]: row["status"] for row in found}
    production = [n for n in names if status[n] == "production"]
    testing = [n for n in names if status[n] == "testing"]
    baseline = values.get("baseline") if values.get("baseline") in names else None
    candidate = values.get("candidate") if values.get("candidate") in names else None
    baseline = baseline or (production + names)[0]
    others = [n for n in testing + names if n != baseline]
    candidate = candidate or (others[0] if others else baseline)
    labels = [(n, n if status[n] is None else f"{n} ({status[n]})") for n in names]
    return prompt, baseline, candidate, labels


def _metric_kind(name: str) -> Kind:
    if name.endswith("_rate"):
        return "rate"
    if name.endswith("_ms"):
        return "ms"
    if "cost" in name:
        return "usd"
    return "number"


def _srm_banner(result: Mapping[str, Any]) -> str:
    srm, shares = result["srm"], result["shares"]
    source = (
        "the registry"
        if shares["source"] == "registry"
        else "equal shares (no registry share for both)"
    )
    expected = f"{shares['baseline']:g} / {shares['candidate']:g} from {source}"
    if srm is None:
        return (
            '<p class="banner neutral" role="status" data-srm="none">'
            "No units in either version yet.</p>"
        )
    observed = f"{srm['observed'][0]:,} / {srm['observed'][1]:,} units"
    p = shown(srm["p_value"], "p")
    if srm["mismatch"]:
        return (
            '<p class="banner bad" role="alert" data-srm="mismatch">'
            f"<strong>Sample ratio mismatch</strong>: {esc(observed)} against expected "
            f'{esc(expected)} (p = <span data-field="srm_p">{esc(p)}</span>). Routing or '
            "logging is broken; no verdict below holds.</p>"
        )
    return (
        '<p class="banner ok" role="status" data-srm="ok">'
        f"<strong>Sample ratio as configured</strong>: {esc(observed)}, expected "
        f'{esc(expected)} (p = <span data-field="srm_p">{esc(p)}</span>).</p>'
    )


def _comparison(answer: Answer) -> str:
    result = answer.body
    units = result["units"]
    unit = esc(result["unit"])
    summary = (
        f'<p class="summary">{esc(result["prompt"])}: baseline '
        f"<strong>{esc(result['baseline'])}</strong> ("
        + number(units["baseline"], "count", "span", data_field="units_baseline")
        + f" {unit}s) against candidate <strong>{esc(result['candidate'])}</strong> ("
        + number(units["candidate"], "count", "span", data_field="units_candidate")
        + f" {unit}s). Excluded because they saw both: "
        + number(result["excluded_units"], "count", "span", data_field="excluded_units")
        + ".</p>"
    )
    level = f"{1 - result['alpha']:.0%}"
    rows = [_metric_row(metric) for metric in result["metrics"]]
    headers = (
        "Metric", "Baseline", "Candidate", "Intervals", "Difference", "Difference interval",
        "p (adjusted)", "Verdict",
    )  # fmt: skip
    notes = "".join(f"<li>{esc(note)}</li>" for note in result["notes"])
    return (
        _srm_banner(result) + summary + '<p class="key"><span class="key-baseline">baseline</span> '
        '<span class="key-candidate">candidate</span> intervals at '
        f"{esc(level)}; the difference is candidate \u2212 baseline.</p>"
        + table(headers, rows, css="compare")
        + f'<ul class="notes">{notes}</ul>'
    )


def _estimate(arm: Mapping[str, Any] | None, kind: Kind, field: str) -> str:
    if arm is None:
        return f'<td data-field="{field}">{NOTHING}</td>'
    interval = arm["interval"] or {}
    return (
        f'<td data-field="{field}">'
        f"{number(arm['value'], kind, 'span', data_part='value')} "
        f'<span class="ci">[{number(interval.get("low"), kind, "span", data_part="low")}, '
        f"{number(interval.get('high'), kind, 'span', data_part='high')}]</span></td>"
    )


def _metric_row(metric: Mapping[str, Any]) -> str:
    kind = _metric_kind(metric["name"])
    base, cand = metric.get("baseline"), metric.get("candidate")
    arms = [
        Interval(
            style,
            a["value"],
            (a["interval"] or {}).get("low"),
            (a["interval"] or {}).get("high"),
            style,
        )
        for a, style in ((base, "baseline"), (cand, "candidate"))
        if a is not None
    ]
    interval = metric["interval"] or {}
    difference = {"value": metric["difference"], "interval": metric["interval"]}
    diff_chart = interval_chart(
        f"{metric['label']}: difference and its interval",
        [
            Interval(
                "difference",
                metric["difference"],
                interval.get("low"),
                interval.get("high"),
                "difference",
            )
        ],
        kind,
        zero=True,
    )
    arms_chart = interval_chart(f"{metric['label']}: each version with its interval", arms, kind)
    verdict = metric["summary"]
    css = {"better": "good", "worse": "bad"}.get(metric["verdict"], "")
    return (
        f'<tr data-metric="{esc(metric["name"])}"><th scope="row">{esc(metric["label"])}</th>'
        + _estimate(base, kind, "baseline")
        + _estimate(cand, kind, "candidate")
        + f"<td>{arms_chart}</td>"
        + _estimate(difference if metric["difference"] is not None else None, kind, "difference")
        + f"<td>{diff_chart}</td>"
        + number(metric["p_value_adjusted"], "p", data_field="p_value_adjusted")
        + f'<td class="verdict {css}" data-field="verdict" '
        f'data-more-units="{esc(json.dumps(metric["more_units_needed"]))}">{esc(verdict)}</td></tr>'
    )
