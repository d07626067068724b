"""The ``closedloop`` command line: one command per job, each ``--help`` with examples.

Errors are one line with the fix (``closedloop._cli_app``); ``--debug`` shows the traceback
of an unexpected one. Commands import what they need when they run, so ``closedloop --help``
loads neither chDB nor scipy, and the CLI works without the extras other commands need.
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path

from closedloop import __version__
from closedloop._errors import ClosedloopError
from closedloop._extras import extra_needed
from closedloop._since import SinceError, since_moment

with extra_needed("cli", "The closedloop command"):
    import typer
    from rich.console import Console

    from closedloop import _cli_feedback, _cli_report
    from closedloop._cli_app import DEBUG, STORE_HELP, CommandGroup, examples
    from closedloop._sql_output import OutputFormat
    from closedloop.demo._cli import demo_command
    from closedloop.experiments._cli_compare import compare_command
    from closedloop.experiments._cli_prompts import prompts_app

app = typer.Typer(
    cls=CommandGroup,
    help="closedloop: feedback loops for LLM apps, on OpenTelemetry.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # --debug's traceback must not print API keys
)
console = Console()


@app.callback(
    epilog=examples(
        "closedloop serve",
        "closedloop report --since 7d",
        "closedloop feedback TRACE_ID:SPAN_ID thumbs 0",
        "closedloop --debug sql 'SELECT count() FROM llm_calls'",
    )
)
def main(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an unexpected error (for a bug report)."
    ),
) -> None:
    """closedloop: feedback loops for LLM apps, on OpenTelemetry."""
    ctx.meta[DEBUG] = debug


@app.command(epilog=examples("closedloop version"))
def version() -> None:
    """Print the installed closedloop version."""
    console.print(f"closedloop {__version__}")


@app.command(
    "test-server",
    epilog=examples(
        "closedloop test-server --port 8000",
        "OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=x python app.py",
    ),
)
def test_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(
        8000, min=0, max=65535, help="Port to listen on (0 picks a free one)."
    ),
) -> None:
    """Run the local OpenAI-compatible server, to try instrumentation without an API key."""
    from closedloop.testing import OpenAICompatibleServer

    try:
        server = OpenAICompatibleServer(host=host, port=port).start()
    except OSError as error:  # the port is taken, or the host is not this machine's
        typer.echo(
            f"closedloop test-server: cannot listen on {host}:{port}: {error}; pass another "
            "--port (0 picks a free one) or --host",
            err=True,
        )
        raise typer.Exit(1) from None
    with server:
        console.print(f"OpenAI-compatible test server on [bold]{server.base_url}[/] (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped")


@app.command(
    epilog=examples(
        "closedloop serve",
        "closedloop serve --store chdb:///var/lib/closedloop --prompts prompts/",
        "closedloop serve --host 0.0.0.0 --api-key-file keys.txt --forward-otlp http://jaeger:4318",
    )
)
def serve(
    *,
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    port: str = typer.Option("4318", help="Port to listen on (0 picks a free one)."),
    store_url: str = typer.Option(
        None,
        "--store",
        help="Store URL (default: chdb://.closedloop/store, relative to the current directory).",
    ),
    policy: str = typer.Option(
        None, help="Collector YAML whose tail_sampling policy decides (default: the packaged one)."
    ),
    forward_otlp: str = typer.Option(
        None, help="Also send kept traces to this OTLP/HTTP base URL, e.g. http://jaeger:4318."
    ),
    rescue_every: str = typer.Option("30s", help="How often to rescue late feedback."),
    max_body_bytes: str = typer.Option(
        "20MiB", help="Largest request body, as sent and decompressed."
    ),
    max_queue_spans: str = typer.Option(
        "40000", help="Span rows held in memory while the store catches up."
    ),
    max_sampler_spans: str = typer.Option(
        "200000",
        help="Spans the sampler holds for undecided traces; past it the oldest are evicted.",
    ),
    max_spool_bytes: str = typer.Option(
        "256MiB", help="Disk for spans the store has not taken yet; when full, 503."
    ),
    max_concurrent_requests: str = typer.Option(
        "8", help="Requests decoded at once; more get 503 with Retry-After."
    ),
    workers: str = typer.Option(
        None,
        help="Processes that decode and map large requests "
        "(default: one per core, none on one core; 0: serve's own process does).",
    ),
    api_key_file: str = typer.Option(
        None,
        help="API keys, one per line, for /v1/feedback and (beyond loopback) /api/; "
        "CLOSEDLOOP_API_KEYS adds comma-separated ones.",
    ),
    cors_origin: list[str] = typer.Option(  # noqa: B008 - typer's way to declare a list option
        [], help="A browser origin allowed to send feedback tokens (repeatable)."
    ),
    state_dir: str = typer.Option(
        None, help="serve's own state (used feedback tokens); default: closedloop's home."
    ),
    prompts: str = typer.Option(
        None, help="The app's prompt directory: versions' status and shares for the API and UI."
    ),
) -> None:
    """Run the backend: OTLP/HTTP on /v1/traces, tail sampling, the two-tier store."""
    with extra_needed("server", "closedloop serve"):
        from closedloop.server import ServeConfig
        from closedloop.server import serve as run_serve
        from closedloop.server._logs import configure_logging
    try:
        config = ServeConfig.from_options(
            host=host,
            port=port,
            store=store_url,
            policy=policy,
            forward_otlp=forward_otlp,
            rescue_every=rescue_every,
            max_body_bytes=max_body_bytes,
            max_queue_spans=max_queue_spans,
            max_sampler_spans=max_sampler_spans,
            max_spool_bytes=max_spool_bytes,
            max_concurrent_requests=max_concurrent_requests,
            workers=workers,
            api_key_file=api_key_file,
            cors_origins=cors_origin,
            state_dir=state_dir,
            prompts=prompts,
        )
    except ClosedloopError as error:
        typer.echo(f"closedloop serve: {error}", err=True)
        raise typer.Exit(2) from None
    configure_logging()
    try:
        run_serve(config)
    except ClosedloopError as error:  # a held store, a port in use, a policy it cannot run
        typer.echo(f"closedloop serve: {error}", err=True)
        raise typer.Exit(1) from None


def _since(text: str) -> datetime.datetime:
    """``3d``, ``12h``, ``30m`` ago, or an ISO timestamp (UTC if no zone)."""
    try:
        return since_moment(text)
    except SinceError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None


def _failed(command: str, error: Exception) -> typer.Exit:
    """One line on stderr, the reason and its fix, and exit status 1; never a traceback."""
    typer.echo(f"closedloop {command}: {' '.join(str(error).split())}", err=True)
    return typer.Exit(1)


@app.command(
    epilog=examples("closedloop rescue", "closedloop rescue --since 12h --store chdb://data/store")
)
def rescue(
    since: str = typer.Option(
        None,
        help="Feedback that arrived since: an age (3d, 12h) or ISO time; "
        "default: the recent tier's retention.",
    ),
    store_url: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Copy traces that got feedback after sampling dropped them back into otel_traces."""
    from closedloop._cli_progress import working
    from closedloop._cli_store import store_access
    from closedloop.store import DEFAULT_URL

    moment = _since(since) if since else None
    try:
        with store_access(store_url or DEFAULT_URL, migrate=True) as store, working("rescuing"):
            result = store.rescue(moment)
    except (ClosedloopError, ValueError) as error:
        raise _failed("rescue", error) from None
    console.print(f"rescued {result.traces} trace(s), {result.spans} span(s) copied")


@app.command(
    epilog=examples(
        "closedloop migrate",
        "closedloop migrate --store clickhouse://default:pass@clickhouse:8123/closedloop",
    )
)
def migrate(
    store_url: str = typer.Option(
        None,
        "--store",
        help="Store URL, e.g. clickhouse://default:pass@clickhouse:8123/closedloop "
        "(default: chdb://.closedloop/store, created if missing).",
    ),
) -> None:
    """Bring the store's schema up to date: apply the migrations it lacks, re-create the views.

    Run it before the collector writes to a ClickHouse server (the collector never creates
    tables); a store already up to date applies none, so it is safe on every deploy."""
    import logging

    from closedloop import _cli_progress
    from closedloop.store import DEFAULT_URL, connect

    # clickhouse-connect logs a failed request before raising it; the error line says it all
    logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())
    try:
        with connect(store_url or DEFAULT_URL, migrate=False) as store:
            applied = _cli_progress.migrate(store)
            where = f"{store.location}, database {store.database}"
    except (ClosedloopError, ValueError) as error:
        raise _failed("migrate", _one_line(f"{error}{_migrate_hint(error)}")) from None
    if not applied:
        console.print(f"{where}: schema up to date, no migrations to apply", soft_wrap=True)
        return
    console.print(f"{where}: applied {len(applied)} migration(s)", soft_wrap=True)
    for name in applied:
        console.print(f"  {name}", soft_wrap=True)


def _migrate_hint(error: Exception) -> str:
    """What to do about a store error whose own message does not say it."""
    from closedloop.store import (
        EditedMigrationError,
        NewerSchemaError,
        StoreError,
        StoreLockedError,
    )

    if isinstance(error, StoreLockedError):
        return " (closedloop serve migrates its store when it starts)"
    if isinstance(error, (EditedMigrationError, NewerSchemaError)) or not isinstance(
        error, StoreError
    ):
        return ""
    return " -- check that the server runs, and --store's host, port, user and password"


def _one_line(message: str) -> ClosedloopError:
    """The message on one line: a server's reply can span several."""
    return ClosedloopError(" ".join(message.split()))


@app.command(
    epilog=examples(
        "closedloop sql 'SELECT prompt_version, calls, reopen_rate FROM prompt_version_metrics'",
        "closedloop sql --file weekly.sql --format csv > weekly.csv",
        "echo 'SELECT count() FROM feedback' | closedloop sql - --format json",
    )
)
def sql(
    query: str = typer.Argument(
        None, help="One statement; - reads it from stdin.", show_default=False
    ),
    file: str = typer.Option(None, "--file", help="Read the statement from this file."),
    output: OutputFormat = typer.Option(  # noqa: B008 - typer's way to declare a choice
        OutputFormat.TABLE, "--format", help="table for people; csv or json for programs."
    ),
    store_url: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Run one read-only SQL statement on the store and print its answer.

    The store's engine refuses writes and DDL (ClickHouse's readonly=1), and stops a
    statement after 60 s or at 100,000 rows: add LIMIT. Table names resolve in the store's
    database: SELECT * FROM prompt_version_metrics LIMIT 10."""
    from closedloop import _sql_output
    from closedloop._cli_store import store_access
    from closedloop.store import DEFAULT_URL

    text = _statement(query, file)
    try:
        with store_access(store_url or DEFAULT_URL, migrate=False) as store:
            result = store.sql(text)
    except (ClosedloopError, ValueError) as error:
        raise _failed("sql", error) from None
    _sql_output.write(result, output, console, sys.stdout)


def _statement(query: str | None, file: str | None) -> str:
    """The statement from the argument, stdin (``-``) or ``--file``: exactly one of them."""
    if (query is None) == (file is None):
        raise typer.BadParameter("give the statement as QUERY, - for stdin, or --file PATH")
    if file is None:
        return sys.stdin.read() if query == "-" else str(query)
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"cannot read {file}: {error}", param_hint="--file") from None


app.command(
    "report",
    epilog=_cli_report.EPILOG,
)(_cli_report.report_command)
app.command("feedback", epilog=_cli_feedback.EPILOG)(_cli_feedback.feedback_command)
app.command(
    "compare",
    epilog=examples(
        "closedloop compare --prompt triage --baseline v3 --candidate v4 --since 14d",
        "closedloop compare --prompt triage --baseline v3 --candidate v4 --prompts prompts/ "
        "--primary reopen_rate --json",
    ),
)(compare_command)
app.add_typer(
    prompts_app,
    name="prompts",
    cls=CommandGroup,
    epilog=examples("closedloop prompts validate prompts/", "closedloop prompts list prompts/"),
)
app.command("demo", epilog=examples("closedloop demo", "closedloop demo --tickets 600 --seed 3"))(
    demo_command
)

if __name__ == "__main__":
    app()
