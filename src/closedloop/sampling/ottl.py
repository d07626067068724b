"""The subset of OTTL conditions that ``ottl_condition`` policies use in practice.

Comparisons of span fields, attributes, resource attributes and event fields with
literals (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``), ``+``/``-`` on numbers, ``and``,
``or``, ``not``, parentheses and ``IsMatch(path, "regex")``, with OTTL's comparison rules:
ints and doubles compare numerically, other type mismatches are false except for ``!=``.
Anything else is rejected when the policy is loaded, never silently misread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import re2

from closedloop.goformat import shortest_fixed
from closedloop.sampling.trace import SpanView

Event = tuple[str, Mapping[str, Any]] | None
Getter = Callable[[SpanView, Event], Any]

ENUMS = {
    "STATUS_CODE_UNSET": 0,
    "STATUS_CODE_OK": 1,
    "STATUS_CODE_ERROR": 2,
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'
    r"|(?P<op>==|!=|<=|>=|<|>|\+|-|\(|\)|\[|\]|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_SPAN_FIELDS: dict[str, Getter] = {
    "name": lambda span, _: span.name,
    "kind": lambda span, _: span.kind,
    "status.code": lambda span, _: span.status,
    "start_time_unix_nano": lambda span, _: span.start_ns,
    "end_time_unix_nano": lambda span, _: span.end_ns,
    "trace_state": lambda span, _: span.trace_state,
}


class OttlError(ValueError):
    """An OTTL condition closedloop cannot evaluate exactly as the collector does."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise OttlError(f"cannot parse OTTL condition {text!r} at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None or right is None:
        both_nil = left is None and right is None
        return {"==": both_nil, "!=": not both_nil}.get(op, False)
    numeric = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        if not (isinstance(left, bool) and isinstance(right, bool)):
            return op == "!="
        return {"==": left == right, "!=": left != right}.get(op, False)
    if isinstance(left, numeric) and isinstance(right, numeric):
        pass
    elif type(left) is not type(right) or not isinstance(left, str):
        return op == "!="
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    context: str
    position: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            raise OttlError(f"expected {expected or 'more'} in OTTL condition, got {token}")
        self.position += 1
        return token

    def disjunction(self) -> Callable[[SpanView, Event], bool]:
        parts = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda s, e: any(p(s, e) for p in parts)

    def conjunction(self) -> Callable[[SpanView, Event], bool]:
        parts = [self.negation()]
        while self.peek() == ("word", "and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda s, e: all(p(s, e) for p in parts)

    def negation(self) -> Callable[[SpanView, Event], bool]:
        if self.peek() == ("word", "not"):
            self.take()
            inner = self.negation()
            return lambda s, e: not inner(s, e)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        if self.peek() == ("word", "IsMatch"):
            return self.is_match()
        left = self.arithmetic()
        token = self.take()
        if token[1] not in ("==", "!=", "<", "<=", ">", ">="):
            raise OttlError(f"expected a comparison operator, got {token[1]!r}")
        right = self.arithmetic()
        op = token[1]
        return lambda s, e: _compare(left(s, e), op, right(s, e))

    def is_match(self) -> Callable[[SpanView, Event], bool]:
        self.take("IsMatch")
        self.take("(")
        target = self.arithmetic()
        self.take(",")
        kind, literal = self.take()
        if kind != "string":
            raise OttlError("IsMatch needs a string literal pattern")
        try:
            pattern = re2.compile(_unquote(literal))
        except re2.error as error:
            raise OttlError(f"IsMatch has a bad regex {literal}: {error}") from error
        self.take(")")

        def matches(span: SpanView, event: Event) -> bool:
            text = _as_text(target(span, event))
            return text is not None and pattern.search(text) is not None

        return matches

    def arithmetic(self) -> Getter:
        value = self.operand()
        while self.peek() in (("op", "+"), ("op", "-")):
            sign = self.take()[1]
            right = self.operand()
            value = _arithmetic(value, sign, right)
        return value

    def operand(self) -> Getter:
        kind, text = self.take()
        if (kind, text) == ("op", "-") and self.peek() is not None and self.peek()[0] == "number":  # type: ignore[index]
            kind, text = "number", "-" + self.take()[1]
        if kind == "string":
            literal: Any = _unquote(text)
        elif kind == "number":
            literal = float(text) if any(c in text for c in ".eE") else int(text)
        elif text in ("true", "false"):
            literal = text == "true"
        elif text == "nil":
            literal = None
        elif text in ENUMS:
            literal = ENUMS[text]
        elif kind == "word":
            return self.path(text)
        else:
            raise OttlError(f"unexpected {text!r} in OTTL condition")
        return lambda s, e: literal

    def path(self, word: str) -> Getter:
        scope, _, rest = word.partition(".")
        if scope not in ("span", "spanevent", "resource"):
            scope, rest = self.context, word
        if scope == "spanevent" and self.context != "spanevent":
            raise OttlError(f"{word!r}: spanevent paths are only valid in spanevent conditions")
        if rest == "attributes":
            self.take("[")
            kind, key = self.take()
            if kind != "string":
                raise OttlError("attributes[...] needs a string key")
            self.take("]")
            name = _unquote(key)
            if scope == "resource":
                return lambda s, e: s.resource.get(name)
            if scope == "spanevent":
                return lambda s, e: e[1].get(name) if e is not None else None
            return lambda s, e: s.attributes.get(name)
        if scope == "spanevent" and rest == "name":
            return lambda s, e: e[0] if e is not None else None
        if scope == "span" and rest in _SPAN_FIELDS:
            return _SPAN_FIELDS[rest]
        raise OttlError(f"unsupported OTTL path {word!r}")


def _arithmetic(left: Getter, sign: str, right: Getter) -> Getter:
    def compute(span: SpanView, event: Event) -> Any:
        a, b = left(span, event), right(span, event)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a + b if sign == "+" else a - b
        return None

    return compute


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(literal: str) -> str:
    """An OTTL string literal's text (escapes resolved, any Unicode kept as is)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), literal[1:-1])


def _as_text(value: Any) -> str | None:
    """What OTTL's string-like getters make of a value, for IsMatch."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return shortest_fixed(value)
    return None


@dataclass(frozen=True)
class Condition:
    """One parsed condition, evaluated per span (and per event for ``spanevent``)."""

    text: str
    evaluate: Callable[[SpanView, Event], bool]

    def matches(self, span: SpanView, event: Event) -> bool:
        return bool(self.evaluate(span, event))


def parse(text: str, context: str) -> Condition:
    """Parse ``text`` in context ``span`` or ``spanevent``; OttlError if unsupported."""
    parser = _Parser(_tokens(text), context)
    evaluate = parser.disjunction()
    if parser.peek() is not None:
        raise OttlError(f"unexpected {parser.peek()[1]!r} at the end of {text!r}")  # type: ignore[index]
    return Condition(text, evaluate)
