"""A row's JSONEachRow line holds exactly the row's values, whatever text they carry
(control characters, quotes, line separators, emoji, lone surrogates), and chDB stores
exactly that text."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import closedloop.store as cs
from closedloop.store._rows import clickhouse_time, encode_row

# every code point, lone surrogates included
texts = st.text(st.characters(codec=None, categories=None), max_size=20)


def readable(text: str) -> str:
    """What a lone surrogate becomes on the way (U+FFFD); a paired one joins its half."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(texts, texts, max_size=4), texts, st.lists(texts, max_size=3))
def test_the_line_holds_the_rows_values(
    attributes: dict[str, str], name: str, names: list[str]
) -> None:
    row = {"SpanName": name, "SpanAttributes": attributes, "Events.Name": names, "Duration": 7}
    line = encode_row(row)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "SpanName": readable(name),
        "SpanAttributes": {readable(k): readable(v) for k, v in attributes.items()},
        "Events.Name": [readable(n) for n in names],
        "Duration": 7,
    }


def test_chdb_stores_the_text_of_the_line(tmp_path: Path) -> None:
    odd = 'a"b\\c\nd\te\x00f\x1f\u2028\u2029 \U0001f600 \ud800 é'
    row = {
        "Timestamp": clickhouse_time(time.time_ns()),  # inside the tier's TTL
        "TraceId": "0" * 31 + "1",
        "SpanId": "0" * 15 + "1",
        "SpanName": odd,
        "SpanAttributes": {odd: odd},
    }
    with cs.connect(f"chdb://{tmp_path}/store") as store:
        store.insert_encoded("otel_traces", encode_row(row), token=None)
        (stored,) = store.query("SELECT SpanName, SpanAttributes FROM closedloop.otel_traces")
    expected = readable(odd)
    assert stored == {"SpanName": expected, "SpanAttributes": {expected: expected}}
