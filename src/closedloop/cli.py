"""The ``closedloop`` command line."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from closedloop import __version__

app = typer.Typer(
    help="closedloop: feedback loops for LLM apps, on OpenTelemetry.", no_args_is_help=True
)
console = Console()


@app.command()
def version() -> None:
    """Print the installed closedloop version."""
    console.print(f"closedloop {__version__}")


@app.command("test-server")
def test_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on (0 picks a free one)."),
) -> None:
    """Run the local OpenAI-compatible server, to try instrumentation without an API key."""
    from closedloop.testing import OpenAICompatibleServer

    with OpenAICompatibleServer(host=host, port=port) as server:
        console.print(f"OpenAI-compatible test server on [bold]{server.base_url}[/] (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped")
