"""The subset of OTTL conditions that ``ottl_condition`` policies use in practice.

Comparisons of span fields, attributes, resource attributes and event fields with
literals (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``), ``+``/``-`` on numbers, ``and``,
``or``, ``not``, parentheses and ``IsMatch(path, "regex")``, with OTTL's comparison rules:
ints and doubles compare numerically, other type mismatches are false except for ``!=``.
Anything else is rejected when the policy is loaded, never silently misread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import re2
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from closedloop._errors import ClosedloopError
from closedloop._pdata import SPAN_KIND_NUMBERS, STATUS_CODE_NUMBERS, ottl_string
from closedloop.sampling._trace import AttributesRead, Event, SpanView

Value = AttributeValue | None
"""What an OTTL expression yields: an attribute's value, a literal, a span field; nil."""
Getter = Callable[[SpanView, Event | None], Value]
Predicate = Callable[[SpanView, Event | None], bool]

ENUMS: dict[str, int] = {
    **{f"STATUS_CODE_{code.name}": STATUS_CODE_NUMBERS[code] for code in StatusCode},
    "SPAN_KIND_UNSPECIFIED": 0,
    **{f"SPAN_KIND_{kind.name}": SPAN_KIND_NUMBERS[kind] for kind in SpanKind},
}
"""OTTL's enum literals for span fields, with their OTLP numbers."""
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


class OttlError(ClosedloopError, ValueError):
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


_Ordered = TypeVar("_Ordered", float, str)


def _order(left: _Ordered, op: str, right: _Ordered) -> bool:
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _compare(left: Value, op: str, right: Value) -> bool:
    if left is None or right is None:
        both_nil = left is None and right is None
        return {"==": both_nil, "!=": not both_nil}.get(op, False)
    if isinstance(left, bool) or isinstance(right, bool):
        if not (isinstance(left, bool) and isinstance(right, bool)):
            return op == "!="
        return {"==": left == right, "!=": left != right}.get(op, False)
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return _order(left, op, right)
    if isinstance(left, str) and isinstance(right, str):
        return _order(left, op, right)
    return op == "!="


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    context: str
    position: int = 0
    keys: dict[str, set[str]] = field(
        default_factory=lambda: {"span": set(), "resource": set(), "spanevent": set()}
    )
    """The attribute keys the condition reads, by path scope."""

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            raise OttlError(f"expected {expected or 'more'} in OTTL condition, got {token}")
        self.position += 1
        return token

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda s, e: any(p(s, e) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.peek() == ("word", "and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda s, e: all(p(s, e) for p in parts)

    def negation(self) -> Predicate:
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

    def is_match(self) -> Predicate:
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

        def matches(span: SpanView, event: Event | None) -> bool:
            text = ottl_string(target(span, event))
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
        following = self.peek()
        if (kind, text) == ("op", "-") and following is not None and following[0] == "number":
            kind, text = "number", "-" + self.take()[1]
        if kind == "string":
            literal: Value = _unquote(text)
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
            self.keys[scope].add(name)
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
    def compute(span: SpanView, event: Event | None) -> Value:
        a, b = left(span, event), right(span, event)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a + b if sign == "+" else a - b
        return None

    return compute


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(literal: str) -> str:
    """An OTTL string literal's text (escapes resolved, any Unicode kept as is)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), literal[1:-1])


@dataclass(frozen=True)
class Condition:
    """One parsed condition, evaluated per span (and per event for ``spanevent``)."""

    text: str
    evaluate: Predicate
    reads: AttributesRead
    """The attribute keys it reads."""

    def matches(self, span: SpanView, event: Event | None) -> bool:
        return bool(self.evaluate(span, event))


def parse(text: str, context: str) -> Condition:
    """Parse ``text`` in context ``span`` or ``spanevent``; OttlError if unsupported."""
    parser = _Parser(_tokens(text), context)
    evaluate = parser.disjunction()
    leftover = parser.peek()
    if leftover is not None:
        raise OttlError(f"unexpected {leftover[1]!r} at the end of {text!r}")
    keys = {scope: frozenset(names) for scope, names in parser.keys.items()}
    return Condition(
        text, evaluate, AttributesRead(keys["span"], keys["resource"], keys["spanevent"])
    )
