"""How the collector's Go code writes and reads span values, in one place.

closedloop must agree with the collector byte for byte in two directions: the rows it
stores (pdata's enum spellings and ``Value.AsString``) and the decisions it samples
(pdata's typed accessors, OTLP's enum numbers, OTTL's string conversion). Every such rule
lives here, so the store and the sampler cannot drift apart; the Go programs in the tests
(``tests/go/asstring``, the collector equivalence runs) pin them to the real code.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from opentelemetry.trace import SpanKind, StatusCode

STATUS_CODE_NUMBERS: Final[Mapping[StatusCode, int]] = MappingProxyType(
    {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
)
"""OTLP's ``Status.code`` numbers. The collector config and OTTL name each code as the
OTel SDK does (``UNSET``, ``OK``, ``ERROR``: ``StatusCode.name``)."""

STATUS_CODE_NAMES: Final[Mapping[StatusCode, str]] = MappingProxyType(
    {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}
)
"""pdata's ``StatusCode.String()``, the spelling the ClickHouse exporter stores."""

SPAN_KIND_NUMBERS: Final[Mapping[SpanKind, int]] = MappingProxyType(
    {
        SpanKind.INTERNAL: 1,
        SpanKind.SERVER: 2,
        SpanKind.CLIENT: 3,
        SpanKind.PRODUCER: 4,
        SpanKind.CONSUMER: 5,
    }
)
"""OTLP's ``Span.kind`` numbers (0 is UNSPECIFIED, which the OTel SDK never produces)."""

SPAN_KIND_NAMES: Final[Mapping[SpanKind, str]] = MappingProxyType(
    {
        SpanKind.INTERNAL: "Internal",
        SpanKind.SERVER: "Server",
        SpanKind.CLIENT: "Client",
        SpanKind.PRODUCER: "Producer",
        SpanKind.CONSUMER: "Consumer",
    }
)
"""pdata's ``SpanKind.String()``, the spelling the ClickHouse exporter stores."""

UNSPECIFIED_SPAN_KIND_NAME: Final = "Unspecified"

_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


# --- pdata's typed accessors (what a policy reads) ---------------------------------------


def int_value(value: object) -> int:
    """pdata ``Value.Int()``: the int, or 0 for any other type."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def str_value(value: object) -> str:
    """pdata ``Value.Str()``: the string, or "" for any other type."""
    return value if isinstance(value, str) else ""


def bool_value(value: object) -> bool:
    """pdata ``Value.Bool()``: the bool, or False for any other type."""
    return value if isinstance(value, bool) else False


# --- Go's float formats -------------------------------------------------------------------


def format_float_fixed(value: float) -> str:
    """``strconv.FormatFloat(value, 'f', -1, 64)``: shortest round-trip digits, no exponent."""
    text = repr(value)  # Python's shortest round-trip digits too
    if "e" in text or "n" in text:  # an exponent, inf or nan: Decimal writes them out
        text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_double(value: float) -> str:
    """A float as pdata prints it: ES6 number-to-string, shortest round-trip digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(value).split("e")
        mantissa = mantissa.removesuffix(".0")
        power = int(exponent)
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power)}"
    return format_float_fixed(value)


# --- pdata's Value.AsString (what the store writes) ---------------------------------------


class _NotFinite(ValueError):
    """Go's encoding/json refuses NaN and infinities; pdata then renders the value as ""."""


def _json_string(text: str) -> str:
    """Go encoding/json with HTML escaping off: raw UTF-8, control characters escaped."""
    out = ['"']
    for char in text:
        escaped = _JSON_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotFinite
        return format_double(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (bytes, bytearray)):
        return _json_string(base64.b64encode(value).decode("ascii")) if value else "null"
    if isinstance(value, Mapping):
        pairs = (f"{_json_string(key)}:{_json_value(value[key])}" for key in sorted(value))
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, Iterable):
        return "[" + ",".join(_json_value(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not an OTLP value type")


def _bool_string(value: bool) -> str:
    return "true" if value else "false"


def _bytes_string(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_SCALAR_STRINGS: Final[Mapping[type, Callable[[Any], str]]] = MappingProxyType(
    {str: str, bool: _bool_string, int: str, float: format_double, bytes: _bytes_string}
)
"""``as_string`` of the exact scalar types, found by one lookup: a receiver renders a dozen
values per span."""


def as_string(value: object) -> str:
    """An attribute value as pdata's ``Value.AsString`` renders it (pdata v1.67)."""
    render = _SCALAR_STRINGS.get(value.__class__)
    if render is not None:
        return render(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    try:
        return _json_value(value)
    except _NotFinite:
        return ""


# --- OTTL's string conversion (what IsMatch compares) -------------------------------------


def ottl_string(value: object) -> str | None:
    """What OTTL's string-like getters make of a value (None: not convertible): scalars as
    ``AsString`` writes them, except doubles, which OTTL formats with ``'f', -1``."""
    if isinstance(value, float):
        return format_float_fixed(value)
    if isinstance(value, (str, bool, int)):
        return as_string(value)
    return None


__all__ = [
    "SPAN_KIND_NAMES",
    "SPAN_KIND_NUMBERS",
    "STATUS_CODE_NAMES",
    "STATUS_CODE_NUMBERS",
    "UNSPECIFIED_SPAN_KIND_NAME",
    "as_string",
    "bool_value",
    "format_double",
    "format_float_fixed",
    "int_value",
    "ottl_string",
    "str_value",
]
