"""A panel's rawSql as Grafana and the ClickHouse plugin turn it into the SQL ClickHouse runs.

Three steps, in the order they run, each ported from its source so the tests run what a
dashboard would send:

1. ``$__conditionalAll(condition, $var)`` in the browser: grafana/clickhouse-datasource
   src/data/CHDatasource.ts, ``applyConditionalAll`` and ``getMacroArgs`` (the plugin's
   tag v4.20.0 and main at 1d04063a; the pinned 4.23.5 was not available to read). The
   last call first; ``1=1`` when the variable's current value is All (``$__all``) or
   empty, else the condition. The replacement is JavaScript's ``String.replace`` with a
   string pattern: first occurrence only, and ``$$ $& $` $'`` in the condition are special.
2. Template variables, in the browser: Grafana's variable regex and formats
   (grafana/scenes ``formatRegistry``: ``singlequote`` quotes each value and escapes ``'``
   as ``\\'``, values joined by ``,``); without a format the plugin's own ``format``
   (CHDatasource.ts: an array becomes ``'a','b'``, a single value stays as it is). All
   means every option's value (no custom all value is set).
3. Macros, in the plugin's backend: pkg/macros/macros.go (``ClickHouseMacros``) on
   grafana/macropro's parser (parser.go, macropro.go, defaults.go): comments blanked first,
   names matched longest first, arguments split at top-level commas and trimmed.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

ALL = "$__all"


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's state: its value (ALL, a list for multi-value, or text)."""

    name: str
    value: str | list[str]
    options: Sequence[str] = ()

    def resolved(self) -> str | list[str]:
        """What Grafana formats: All is every option's value."""
        if self.value in (ALL, [ALL]):
            return list(self.options)
        return self.value

    def current_text(self) -> str:
        """``current.value.toString()`` as applyConditionalAll reads it."""
        return ",".join(self.value) if isinstance(self.value, list) else self.value


@dataclass(frozen=True)
class TimeRange:
    """The query's time range and interval, as the plugin's backend receives them."""

    start: datetime.datetime
    end: datetime.datetime
    interval_s: float


# conditionalAll (browser)


def _macro_args(query: str, args_index: int) -> list[str]:
    """getMacroArgs: arguments of the call whose '(' is at ``args_index`` (no quote rules)."""
    args: list[str] = []
    depth = 0
    last_end = 1
    substring = query[args_index:]
    for match in re.finditer(r"\(|\)|,", substring):
        found = match.group(0)
        if found == "(":
            depth += 1
        elif found == ")":
            depth -= 1
        if found == "," and depth == 1:
            args.append(substring[last_end : match.end() - 1])
            last_end = match.end()
        if depth == 0:
            args.append(substring[last_end : match.end() - 1])
            return args
    return []


def _js_replace_first(text: str, pattern: str, replacement: str) -> str:
    """JavaScript ``text.replace(pattern, replacement)`` with a string pattern."""
    index = text.find(pattern)
    if index < 0:
        return text
    out: list[str] = []
    i = 0
    while i < len(replacement):
        pair = replacement[i : i + 2]
        special = {
            "$$": "$",
            "$&": pattern,
            "$`": text[:index],
            "$'": text[index + len(pattern) :],
        }
        if pair in special:
            out.append(special[pair])
            i += 2
        else:
            out.append(replacement[i])
            i += 1
    return text[:index] + "".join(out) + text[index + len(pattern) :]


def apply_conditional_all(raw: str, variables: Mapping[str, Variable]) -> str:
    macro = "$__conditionalAll("
    index = raw.rfind(macro)
    while index != -1:
        params = _macro_args(raw, index + len(macro) - 1)
        if len(params) != 2:
            return raw
        found = re.search(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+", params[1].strip())
        phrase = params[0]
        if found:
            variable = variables.get(found.group(0))
            if variable is not None and variable.current_text() in ("", ALL):
                phrase = "1=1"
        raw = _js_replace_first(raw, f"{macro}{params[0]},{params[1]})", phrase)
        index = raw.rfind(macro)
    return raw


# template variables (browser)

VARIABLE_REGEX = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)


def _plugin_format(value: str | list[str]) -> str:
    return "'" + "','".join(value) + "'" if isinstance(value, list) else value


def _single_quote(value: str | list[str]) -> str:
    values = value if isinstance(value, list) else [value]
    return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)


FORMATS: dict[str, Callable[[str | list[str]], str]] = {
    "singlequote": _single_quote,
    "csv": lambda value: ",".join(value) if isinstance(value, list) else value,
    "raw": lambda value: ",".join(value) if isinstance(value, list) else value,
}


class UnknownVariable(KeyError):
    """A ``$name`` that is neither a dashboard variable nor a ``$__`` macro."""


def interpolate(raw: str, variables: Mapping[str, Variable]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name.startswith("__"):
            return match.group(0)  # Grafana's globals and the plugin's macros
        if name not in variables:
            raise UnknownVariable(name)
        fmt = match.group(3) or match.group(6)
        value = variables[name].resolved()
        return FORMATS[fmt](value) if fmt else _plugin_format(value)

    return VARIABLE_REGEX.sub(replace, raw)


# macros (plugin backend)


def _scan_quoted(s: str, pos: int) -> int:
    """End of a quoted region starting at ``pos``: doubled quotes and, for ClickHouse
    (BackslashEscape), backslash escapes stay inside."""
    quote = s[pos]
    j = pos + 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == quote:
            if j + 1 < len(s) and s[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return j


def _dollar_quote_end(s: str, pos: int) -> int:
    j = pos + 1
    while j < len(s) and s[j] != "$":
        if not (s[j].isalnum() or s[j] == "_"):
            return -1
        j += 1
    if j >= len(s):
        return -1
    tag = s[pos : j + 1]
    close = s.find(tag, j + 1)
    return -1 if close < 0 else close + len(tag)


def strip_comments(query: str) -> str:
    """macropro.StripComments with LineComment|BlockComment|BackslashEscape|BacktickQuote|
    DollarQuote: comment regions become spaces, quoted regions stay."""
    out: list[str] = []
    i = 0
    while i < len(query):
        c = query[i]
        if c in "'\"`":
            j = _scan_quoted(query, i)
            out.append(query[i:j])
            i = j
            continue
        if c == "$":
            end = _dollar_quote_end(query, i)
            if end >= 0:
                out.append(query[i:end])
                i = end
                continue
        if query.startswith("--", i):
            j = i
            while j < len(query) and query[j] not in "\r\n":
                j += 1
            out.append(" " * (j - i))
            i = j
            continue
        if query.startswith("/*", i):
            close = query.find("*/", i + 2)
            j = len(query) if close < 0 else close + 2
            out.append(" " * (j - i))
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _closing_paren(s: str) -> int:
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c in "'\"":
            i = _scan_quoted(s, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _split_args(raw: str) -> list[str]:
    raw = raw.strip()
    if not raw:
        return []
    args: list[str] = []
    depth = start = i = 0
    while i < len(raw):
        c = raw[i]
        if c in "'\"":
            i = _scan_quoted(raw, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(raw[start:i].strip())
            start = i + 1
        i += 1
    args.append(raw[start:].strip())
    return args


def _unix(moment: datetime.datetime) -> int:
    return math.floor(moment.timestamp())


def _millis(moment: datetime.datetime) -> int:
    return math.floor(moment.timestamp() * 1000)


def _one(name: str, args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError(f"$__{name} expected 1 argument(s), received {len(args)}")
    return args[0]


def _macros(r: TimeRange) -> dict[str, Callable[[list[str]], str]]:
    """pkg/macros/macros.go ClickHouseMacros over macropro.DefaultMacros."""
    start, end = f"toDateTime({_unix(r.start)})", f"toDateTime({_unix(r.end)})"
    start_ms = f"fromUnixTimestamp64Milli({_millis(r.start)})"
    end_ms = f"fromUnixTimestamp64Milli({_millis(r.end)})"
    day_start = f"toDate('{r.start.astimezone(datetime.timezone.utc):%Y-%m-%d}')"
    day_end = f"toDate('{r.end.astimezone(datetime.timezone.utc):%Y-%m-%d}')"
    seconds = int(max(r.interval_s, 1))
    millis = int(max(r.interval_s * 1000, 1))

    def date_time_filter(args: list[str]) -> str:
        if len(args) != 2:
            raise ValueError(f"$__dateTimeFilter expected 2 argument(s), received {len(args)}")
        return (
            f"({args[0]} >= {day_start} AND {args[0]} <= {day_end}) AND "
            f"({args[1]} >= {start} AND {args[1]} <= {end})"
        )

    return {
        "timeFilter": lambda a: f"{_one('timeFilter', a)} >= {start} AND {a[0]} <= {end}",
        "timeFilter_ms": lambda a: (
            f"{_one('timeFilter_ms', a)} >= {start_ms} AND {a[0]} <= {end_ms}"
        ),
        "dateFilter": lambda a: f"{_one('dateFilter', a)} >= {day_start} AND {a[0]} <= {day_end}",
        "dateTimeFilter": date_time_filter,
        "dt": date_time_filter,
        "timeFrom": lambda a: f"{_one('timeFrom', a)} >= {start}",
        "timeTo": lambda a: f"{_one('timeTo', a)} <= {end}",
        "fromTime": lambda a: start,
        "toTime": lambda a: end,
        "fromTime_ms": lambda a: start_ms,
        "toTime_ms": lambda a: end_ms,
        "timeInterval": lambda a: (
            f"toStartOfInterval(toDateTime({_one('timeInterval', a)}), INTERVAL {seconds} second)"
        ),
        "timeInterval_ms": lambda a: (
            f"toStartOfInterval(toDateTime64({_one('timeInterval_ms', a)}, 3), "
            f"INTERVAL {millis} millisecond)"
        ),
        "interval_s": lambda a: str(seconds),
        "interval_ms": lambda a: str(millis),
    }


def expand_macros(query: str, time_range: TimeRange) -> str:
    """macropro.Interpolate with the plugin's macros; unknown ``$__`` names stay as they are."""
    result = strip_comments(query)
    macros = _macros(time_range)
    for name in sorted(macros, key=lambda n: (-len(n), n)):
        token = "$__" + name
        out: list[str] = []
        rest = result
        while (index := rest.find(token)) >= 0:
            after = index + len(token)
            if after < len(rest) and (rest[after].isalnum() or rest[after] == "_"):
                out.append(rest[:after])
                rest = rest[after:]
                continue
            out.append(rest[:index])
            rest = rest[after:]
            raw = ""
            if rest.startswith("("):
                close = _closing_paren(rest)
                if close >= 0:
                    raw, rest = rest[1:close], rest[close + 1 :]
            out.append(macros[name](_split_args(raw)))
        result = "".join(out) + rest
    return result


def expand(raw: str, variables: Mapping[str, Variable], time_range: TimeRange) -> str:
    """The SQL ClickHouse receives for ``raw`` under these variables and time range."""
    return expand_macros(interpolate(apply_conditional_all(raw, variables), variables), time_range)
