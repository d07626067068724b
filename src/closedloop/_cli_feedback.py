"""``closedloop feedback``: record one feedback signal from the shell.

It makes the span ``closedloop.feedback.record()`` makes (Contract 2: a ``closedloop.feedback``
span in the call's trace with its ``gen_ai.evaluation.result`` event), checked by the same
code, and sends it over OTLP/HTTP to the same place ``instrument()`` sends by default, a
running ``closedloop serve`` or collector. The span is exported at once and the command says
whether it arrived: a script that records feedback must know when it did not.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from closedloop._cli_app import examples
from closedloop._errors import ClosedloopError
from closedloop._extras import extra_needed

with extra_needed("cli", "The closedloop command"):
    import typer
    from rich.console import Console
    from rich.markup import escape

if TYPE_CHECKING:
    from closedloop.feedback import FeedbackKind, Recorded

DEFAULT_ENDPOINT: Final = "http://localhost:4318"
"""Where ``instrument()``'s exporter sends when nothing says otherwise."""
SERVICE_NAME: Final = "closedloop-cli"
_TRUE: Final = frozenset({"true", "yes"})
_FALSE: Final = frozenset({"false", "no"})
# the OTLP exporter logs each failed attempt; the one-line error says what they said
_EXPORTER_LOGGER: Final = "opentelemetry.exporter.otlp.proto.http"
_ERRNO: Final = re.compile(r"\[Errno -?\d+\] [^\"')]+")
_FIELDS: Final = {
    "target": "TARGET",
    "name": "NAME",
    "value": "VALUE",
    "label": "--label",
    "comment": "--comment",
    "kind": "--kind",
    "source": "--source",
}

EPILOG: Final = examples(
    "closedloop feedback 4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7 thumbs 1 "
    '--comment "solved it"',
    "closedloop feedback 4bf92f3577b34da6a3ce929d0e0e4736 ticket_reopened true --outcome",
    "closedloop feedback 4bf92f3577b34da6a3ce929d0e0e4736 safety --label high "
    "--endpoint http://collector:4318",
)


class FeedbackNotSent(ClosedloopError, RuntimeError):
    """The OTLP endpoint did not take the span."""


@dataclass(frozen=True)
class Signal:
    """One signal as the shell gave it, checked."""

    target: str
    name: str
    value: float | bool | None
    label: str | None
    comment: str | None
    kind: FeedbackKind
    source: str | None


def feedback_command(
    *,
    target: str = typer.Argument(
        ...,
        metavar="TARGET",
        help="The call: trace_id:span_id (feedback.call_id) or a trace id (its latest call).",
        show_default=False,
    ),
    name: str = typer.Argument(
        ...,
        metavar="NAME",
        help="The signal: thumbs, rating, safety, task_succeeded, ticket_reopened, escalated...",
        show_default=False,
    ),
    value: str = typer.Argument(
        None,
        metavar="VALUE",
        help="A number, or true/false (1/0); optional with --label or --comment.",
    ),
    label: str = typer.Option(None, help="A category, e.g. a safety level: none/low/medium/high."),
    comment: str = typer.Option(None, help="Free text (redacted like captured content)."),
    kind: str = typer.Option(
        None, help="explicit, implicit, outcome, judge or label (default: explicit)."
    ),
    outcome: bool = typer.Option(
        False, "--outcome", help="An outcome known later: the same as --kind outcome."
    ),
    source: str = typer.Option("cli", help="Where the signal came from."),
    endpoint: str = typer.Option(
        DEFAULT_ENDPOINT, help="OTLP/HTTP base URL of closedloop serve or a collector."
    ),
) -> None:
    """Record one feedback signal about a call, as closedloop.feedback.record() does.

    The span goes over OTLP/HTTP to closedloop serve (or a collector) and is sent before the
    command returns; exit status 1 when nothing took it."""
    signal = checked(
        target=target,
        name=name,
        value=value,
        label=label,
        comment=comment,
        kind=_kind(kind, outcome),
        source=source,
    )
    recorded, url = send(signal, endpoint)
    console = Console(soft_wrap=True)
    shown = "" if signal.value is None else f" = {_shown(signal.value)}"
    details = ", ".join(
        f"{field} {escape(repr(text))}"
        for field, text in (("label", signal.label), ("comment", signal.comment))
        if text is not None
    )
    console.print(
        f"sent {escape(signal.name)}{shown} ({signal.kind}{', ' + details if details else ''}) "
        f"about {signal.target}"
    )
    console.print(f"  feedback span {recorded.trace_id}:{recorded.span_id} to {url}")


def _kind(kind: str | None, outcome: bool) -> str:
    if outcome and kind not in (None, "outcome"):
        raise typer.BadParameter(f"--outcome sets kind outcome; --kind {kind} contradicts it")
    return "outcome" if outcome else kind or "explicit"


def _shown(value: float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def checked(
    *,
    target: str,
    name: str,
    value: str | None,
    label: str | None,
    comment: str | None,
    kind: str,
    source: str | None,
) -> Signal:
    """The signal, checked by ``closedloop.feedback``'s own rules; a mistake is a
    ``BadParameter`` that names the argument."""
    from closedloop.feedback._recorder import InvalidFeedbackField, check_signal
    from closedloop.feedback._targets import resolve

    try:
        try:
            resolved = resolve(target)
        except (TypeError, ValueError) as error:
            raise InvalidFeedbackField("target", str(error)) from error
        number = _value(value)
        if name == "thumbs" and label is None and number is not None:
            label = "up" if number else "down"  # as feedback.thumbs() labels it
        check_signal(name, number, label=label, comment=comment, kind=kind, source=source)
    except InvalidFeedbackField as error:
        raise typer.BadParameter(str(error), param_hint=_FIELDS[error.field]) from None
    return Signal(str(resolved), name, number, label, comment, cast("FeedbackKind", kind), source)


def _value(text: str | None) -> float | bool | None:
    """``true``/``false`` as a bool (recorded as 1/0), else a number."""
    from closedloop.feedback._recorder import InvalidFeedbackField

    if text is None:
        return None
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    try:
        return float(text)
    except ValueError:
        raise InvalidFeedbackField(
            "value", f"value={text!r} is not a number; pass a number, true or false."
        ) from None


def send(signal: Signal, endpoint: str) -> tuple[Recorded, str]:
    """Make the feedback span and export it to ``endpoint`` now; its ids and the URL."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from closedloop._bootstrap import EXPORT_TIMEOUT_S, _traces_url
    from closedloop.feedback._recorder import emit, tracer_for
    from closedloop.feedback._targets import resolve

    try:
        url = _traces_url(endpoint)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--endpoint") from None
    made = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(made))
    recorded = emit(
        tracer_for(provider),
        resolve(signal.target),
        signal.name,
        signal.value,
        label=signal.label,
        comment=signal.comment,
        kind=signal.kind,
        source=signal.source,
        timestamp_ns=time.time_ns(),
    )
    assert recorded is not None  # the SDK's default sampler records a sampled parent's child
    exporter = OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S)
    said = _Said()
    logger = logging.getLogger(_EXPORTER_LOGGER)
    logger.addHandler(said)
    logger.propagate = False
    try:
        result = exporter.export(made.get_finished_spans())
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it bare
        logger.removeHandler(said)
        logger.propagate = True
    if result is not SpanExportResult.SUCCESS:
        raise FeedbackNotSent(
            f"{url} did not take the feedback span ({_why(said.first)}); start "
            "`closedloop serve` (or a collector) there, or pass --endpoint"
        )
    return recorded, url


def _why(message: str | None) -> str:
    """The gist of the exporter's message: a refused connection's errno, not the URL's
    repr three times over."""
    if message is None:
        return "no answer"
    errno = _ERRNO.search(message)
    return errno.group(0) if errno else message


class _Said(logging.Handler):
    """The exporter's first log message: why the export failed (later ones only retry)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None:
            self.first = record.getMessage()
