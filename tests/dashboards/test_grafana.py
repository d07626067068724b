"""The expansion helper reproduces the plugin's own test expectations (pkg/macros/
macros_test.go, src/data/CHDatasource.test.ts) and Grafana's formats, so the query tests
run what a dashboard would send."""

from __future__ import annotations

import datetime

import pytest

from dashboards.grafana import (
    ALL,
    TimeRange,
    UnknownVariable,
    Variable,
    apply_conditional_all,
    expand,
    expand_macros,
    interpolate,
)

# macros_test.go's range: 2014-11-12T11:45:26.123Z to 2015-11-12T11:45:26.456Z.
RANGE = TimeRange(
    datetime.datetime(2014, 11, 12, 11, 45, 26, 123000, datetime.timezone.utc),
    datetime.datetime(2015, 11, 12, 11, 45, 26, 456000, datetime.timezone.utc),
    interval_s=300,
)


@pytest.mark.parametrize(
    ("query", "expanded"),
    [
        (
            "select * from foo where $__timeFilter(cast(sth as timestamp) )",
            "select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND "
            "cast(sth as timestamp) <= toDateTime(1447328726)",
        ),
        (
            "select * from foo where $__timeFilter_ms(cast(sth as timestamp))",
            "select * from foo where cast(sth as timestamp) >= "
            "fromUnixTimestamp64Milli(1415792726123) AND cast(sth as timestamp) <= "
            "fromUnixTimestamp64Milli(1447328726456)",
        ),
        (
            "select * from foo where ( date >= $__fromTime ) and ( date <= $__toTime ) limit 100",
            "select * from foo where ( date >= toDateTime(1415792726) ) and "
            "( date <= toDateTime(1447328726) ) limit 100",
        ),
        ("$__dateFilter(day)", "day >= toDate('2014-11-12') AND day <= toDate('2015-11-12')"),
        (
            "$__timeInterval(ts) -- $__timeFilter(x) is in a comment",
            "toStartOfInterval(toDateTime(ts), INTERVAL 300 second) "
            + " " * len("-- $__timeFilter(x) is in a comment"),
        ),
        ("count() / $__interval_s, '$__interval_s'", "count() / 300, '300'"),
        ("$__unknown(x)", "$__unknown(x)"),
    ],
)
def test_macros_as_the_plugin_expands_them(query: str, expanded: str) -> None:
    assert expand_macros(query, RANGE) == expanded


def test_conditional_all_as_the_plugin_applies_it() -> None:
    raw = (
        "select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal)"
        " and $__conditionalAll(fieldVal in ($fieldVal2), $fieldVal2);"
    )
    variables = {
        "fieldVal": Variable("fieldVal", ["val1", "val2"]),
        "fieldVal2": Variable("fieldVal2", ALL),
    }
    assert apply_conditional_all(raw, variables) == (
        "select stuff from table where fieldVal in ($fieldVal) and 1=1;"
    )
    assert apply_conditional_all("$__conditionalAll(a = 1, $x)", {"x": Variable("x", "")}) == "1=1"


def test_variables_formatted_as_grafana_and_the_plugin_format_them() -> None:
    variables = {
        "service": Variable("service", ALL, ["a", "o'b"]),
        "split": Variable("split", "v2:9"),
    }
    assert interpolate("IN (${service:singlequote})", variables) == "IN ('a','o\\'b')"
    assert interpolate("IN ($service)", variables) == "IN ('a','o'b')"
    assert interpolate("${split:singlequote} $split", variables) == "'v2:9' v2:9"
    assert interpolate("$__timeFilter(t)", variables) == "$__timeFilter(t)"
    with pytest.raises(UnknownVariable):
        interpolate("$missing", variables)


def test_full_pipeline_order() -> None:
    variables = {"prompt": Variable("prompt", ["support"], ["support", "triage"])}
    raw = "WHERE $__timeFilter(t) AND $__conditionalAll(p IN (${prompt:singlequote}), $prompt)"
    assert expand(raw, variables, RANGE) == (
        "WHERE t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) AND p IN ('support')"
    )
