"""Every page of serve's web UI in Chromium: the numbers shown are the query API's, each
chart has drawn, filters narrow, links lead where they say, and each page leaves a
screenshot under .build/screenshots/ (the README uses the Compare one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from ui.conftest import Ui, screenshot
from ui.shown import agrees, drawn

OVERVIEW_METRICS = (
    "calls", "error_rate", "total_cost_usd", "latency_p95_ms",
    "task_success_rate", "thumbs_up_rate", "reopen_rate", "escalation_rate",
)  # fmt: skip
PROMPT_NUMBERS = (
    "calls", "error_rate", "latency_p95_ms", "total_cost_usd", "cost_per_priced_call_usd",
    "task_success_rate", "thumbs_up_rate", "reopen_rate", "escalation_rate",
)  # fmt: skip


def api_links(page: Any) -> list[str]:
    return [
        page.locator("a.api").nth(i).get_attribute("href")
        for i in range(page.locator("a.api").count())
    ]


def test_overview_draws_every_metric_per_version_as_the_api_says(page: Any, ui: Ui) -> None:
    page.goto(ui.url + "/")
    [source] = api_links(page)
    assert source == "/api/overview"
    series = ui.api(source)["series"]
    assert {(s["prompt"], s["version"]) for s in series} == {("triage", "v3"), ("triage", "v4")}
    assert sum(p["calls"] for s in series for p in s["points"]) == ui.sent["calls"]
    for metric in OVERVIEW_METRICS:
        panel = page.locator(f'section.panel[data-metric="{metric}"]')
        assert (
            drawn(panel.locator("svg.chart"))
            == sum(1 for s in series for p in s["points"] if p[metric] is not None)
            > 0
        )
        for s in series:
            for point in s["points"]:
                cell = panel.locator(
                    f'td[data-series="{s["prompt"]} {s["version"]}"][data-day="{point["day"]}"]'
                )
                agrees(cell, point[metric])
    screenshot(page, "overview")


def test_prompts_shows_each_version_with_its_registry_status_and_sorts(page: Any, ui: Ui) -> None:
    page.goto(ui.url + "/prompts")
    [source] = api_links(page)
    answer = ui.api(source)
    assert answer["registry"] is True
    rows = {(r["prompt_name"], r["prompt_version"]): r for r in answer["rows"]}
    assert {(k, r["status"], r["share_percent"]) for k, r in rows.items()} == {
        (("triage", "v3"), "production", 50.0),
        (("triage", "v4"), "testing", 50.0),
    }
    for (prompt, version), row in rows.items():
        line = page.locator(f'tr[data-prompt="{prompt}"][data-version="{version}"]')
        assert line.locator('[data-column="status"]').inner_text() == row["status"]
        assert line.locator('[data-column="share_percent"]').inner_text() == "50 %"
        for column in PROMPT_NUMBERS:
            agrees(line.locator(f'td[data-column="{column}"]'), row[column])
    by_calls = sorted(rows.values(), key=lambda r: r["calls"])
    header = page.locator('th[data-column="calls"]')
    header.locator("a").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert versions_in_order(page) == [r["prompt_version"] for r in by_calls]
    header.locator("a").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert versions_in_order(page) == [r["prompt_version"] for r in reversed(by_calls)]
    screenshot(page, "prompts")


def versions_in_order(page: Any) -> list[str]:
    rows = page.locator("table.versions tbody tr")
    return [rows.nth(i).get_attribute("data-version") for i in range(rows.count())]


def check_comparison(page: Any, ui: Ui, baseline: str, candidate: str) -> dict[str, Any]:
    sources = api_links(page)
    compare_url = next(url for url in sources if url.startswith("/api/compare"))
    query = parse_qs(urlsplit(compare_url).query)
    assert (query["baseline"], query["candidate"]) == ([baseline], [candidate])
    result = ui.api(compare_url)
    assert result["shares"] == {"baseline": 50.0, "candidate": 50.0, "source": "registry"}
    banner = page.locator("p.banner")
    assert banner.get_attribute("data-srm") == ("mismatch" if result["srm"]["mismatch"] else "ok")
    agrees(page.locator('[data-field="units_baseline"]'), result["units"]["baseline"])
    agrees(page.locator('[data-field="units_candidate"]'), result["units"]["candidate"])
    for metric in result["metrics"]:
        row = page.locator(f'tr[data-metric="{metric["name"]}"]')
        assert row.locator('[data-field="verdict"]').inner_text() == metric["summary"]
        agrees(row.locator('[data-field="p_value_adjusted"]'), metric["p_value_adjusted"])
        if metric["difference"] is None:
            continue
        for arm in ("baseline", "candidate"):
            cell = row.locator(f'td[data-field="{arm}"]')
            agrees(cell.locator('[data-part="value"]'), metric[arm]["value"])
            agrees(cell.locator('[data-part="low"]'), metric[arm]["interval"]["low"])
            agrees(cell.locator('[data-part="high"]'), metric[arm]["interval"]["high"])
        difference = row.locator('td[data-field="difference"]')
        agrees(difference.locator('[data-part="value"]'), metric["difference"])
        agrees(difference.locator('[data-part="low"]'), metric["interval"]["low"])
        agrees(difference.locator('[data-part="high"]'), metric["interval"]["high"])
        charts = row.locator("svg.interval")
        assert drawn(charts.nth(0)) == 2 and drawn(charts.nth(1)) == 1
    return result


def test_compare_shows_the_statistics_and_its_pickers_switch_versions(page: Any, ui: Ui) -> None:
    page.goto(ui.url + "/compare")
    result = check_comparison(page, ui, "v3", "v4")
    assert result["trustworthy"]
    reopen = next(m for m in result["metrics"] if m["name"] == "reopen_rate")
    assert reopen["verdict"] == "better"  # v4 misroutes fewer tickets
    screenshot(page, "compare")

    page.select_option('select[name="baseline"]', "v4")
    page.select_option('select[name="candidate"]', "v3")
    page.locator("form.filters button").click()
    page.wait_for_url("**/compare?*")
    swapped = check_comparison(page, ui, "v4", "v3")
    assert next(m for m in swapped["metrics"] if m["name"] == "reopen_rate")["verdict"] == "worse"


def feedback_rows(page: Any) -> Any:
    return page.locator("table.feedback tbody tr")


def test_feedback_filters_narrow_the_rows_and_each_links_to_its_trace(page: Any, ui: Ui) -> None:
    page.goto(ui.url + "/feedback")
    everything = ui.api(api_links(page)[0])["rows"]
    assert feedback_rows(page).count() == len(everything) == 50
    for i, row in enumerate(everything[:10]):
        line = feedback_rows(page).nth(i)
        assert line.get_attribute("data-trace-id") == row["metadata"]["trace_id"]
        agrees(line.locator('[data-field="value"]'), (row["feedback_value"] or {}).get("value"))

    page.fill('input[name="name"]', "escalated")
    page.locator("form.filters button").click()
    page.wait_for_url("**/feedback?*name=escalated*")
    [source] = api_links(page)
    assert parse_qs(urlsplit(source).query)["name"] == ["escalated"]
    escalated = ui.api("/api/feedback?name=escalated&limit=50")["rows"]
    assert 0 < len(escalated) == feedback_rows(page).count() < len(everything)
    assert set(feedback_rows(page).locator("td:nth-child(6)").all_inner_texts()) == {"escalated"}

    page.fill('input[name="name"]', "")
    page.select_option('select[name="type"]', "explicit")
    page.locator("form.filters button").click()
    page.wait_for_url("**/feedback?*type=explicit*")
    explicit = ui.api("/api/feedback?type=explicit&limit=50")["rows"]
    assert 0 < len(explicit) == feedback_rows(page).count()
    assert set(feedback_rows(page).locator("td:nth-child(5)").all_inner_texts()) == {"explicit"}
    screenshot(page, "feedback")

    first = feedback_rows(page).first
    trace_id = first.get_attribute("data-trace-id")
    first.locator("a.trace").click()
    page.wait_for_url(f"**/trace/{trace_id}")
    assert page.locator('[data-field="trace_id"]').inner_text() == trace_id


def test_trace_draws_the_span_tree_with_content_and_feedback(page: Any, ui: Ui) -> None:
    rows = ui.api("/api/feedback?type=outcome&limit=5")["rows"]
    trace_id = rows[0]["metadata"]["trace_id"]
    page.goto(f"{ui.url}/trace/{trace_id}")
    answer = ui.api(api_links(page)[0])
    assert answer["trace_id"] == trace_id
    spans = answer["spans"]
    agrees(page.locator('[data-field="spans"]'), len(spans))
    agrees(page.locator('[data-field="feedback"]'), len(answer["feedback"]))
    assert drawn(page.locator("svg.timeline")) == len(spans)
    for span in spans:
        section = page.locator(f'section.span[id="span-{span["span_id"]}"]')
        assert section.locator("h3").inner_text() == span["name"]
    chat = next(s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat")
    content = page.locator(f'section.span[id="span-{chat["span_id"]}"] .content')
    assert "gen_ai.input.messages" in content.inner_text()
    shown_signals = page.locator("table.trace-feedback tbody tr")
    assert shown_signals.count() == len(answer["feedback"]) > 0
    assert shown_signals.locator("td:nth-child(3)").all_inner_texts() == [
        s["name"] for s in answer["feedback"]
    ]
    screenshot(page, "trace")


def test_sampling_shows_the_stores_counts_over_time(page: Any, ui: Ui) -> None:
    page.goto(ui.url + "/sampling")
    totals_url, series_url = api_links(page)
    totals, series = ui.api(totals_url), ui.api(series_url)
    assert totals["spans"]["received"] > totals["spans"]["kept"] > 0
    for unit in ("spans", "traces"):
        row = page.locator(f'table.sampling-totals tr[data-unit="{unit}"]')
        for field in ("received", "kept", "dropped", "rescued"):
            agrees(row.locator(f'[data-field="{field}"]'), totals[unit][field])
    points = series["points"]
    assert sum(p["received"] for p in points) == totals["spans"]["received"]
    for point in points:
        row = page.locator(f'table.sampling-series tr[data-start="{point["start"]}"]')
        for field in ("received", "kept", "dropped", "rescued"):
            agrees(row.locator(f'[data-field="{field}"]'), point[field])
    assert drawn(page.locator("svg.chart").first) == 4 * len(points)
    for rule, counts in totals["since_start"]["by_rule"].items():
        row = page.locator(f'table.by-rule tr[data-rule="{rule}"]')
        for decision, count in counts.items():
            agrees(row.locator(f'[data-field="{decision}"]'), count)
    screenshot(page, "sampling")


def test_pages_escape_what_they_echo(ui: Ui) -> None:
    hostile = '"><script>alert(1)</script>'
    reply = ui.serve.request("GET", "/feedback?name=" + hostile.replace(" ", "%20"))
    assert reply.status == 200
    assert b"<script>" not in reply.body
    assert b"&quot;&gt;&lt;script&gt;" in reply.body
    assert "script-src" not in reply.headers["content-security-policy"]  # none allowed
