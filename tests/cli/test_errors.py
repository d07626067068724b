"""A bad call is one line on stderr with the fix, never a traceback; an unexpected error
is one line that names ``--debug``, and ``--debug`` shows its traceback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.running import cli, one_error_line


@pytest.fixture
def not_clickhouse() -> Iterator[str]:
    """A store URL whose port answers HTTP, but as a plain web server (an HTML error page
    of several lines), not ClickHouse: a port mixed up with another service's."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"clickhouse://127.0.0.1:{server.server_address[1]}/closedloop"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "command", [("sql", "SELECT 1"), ("report",), ("rescue",), ("migrate",)], ids=lambda c: c[0]
)
def test_a_store_that_is_not_clickhouse_is_one_line(
    command: tuple[str, ...], not_clickhouse: str, tmp_path: Path
) -> None:
    line = one_error_line(cli(*command, "--store", not_clickhouse, cwd=tmp_path), command[0])
    assert "cannot reach ClickHouse at clickhouse://127.0.0.1:" in line
    assert "HTTP status 501" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sql",), "give the statement as QUERY, - for stdin, or --file PATH"),
        (("rescue", "--since", "yesterday"), "neither an age like 3d/12h/30m nor an ISO"),
        (("report", "--colour"), "No such option: --colour"),
        (("test-server", "--port", "70000"), "less than or equal to 65535"),
        (("feedback", "0" * 31 + "1"), "Missing argument 'NAME'"),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else "",
)
def test_a_usage_mistake_is_one_line_pointing_at_help(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    line = one_error_line(cli(*args, cwd=tmp_path), args[0], code=2)
    assert message in line
    assert line.endswith(f"(see closedloop {args[0]} --help for usage and examples)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "--port", "abc"), "--port 'abc' is not a port number: pass 0-65535"),
        (
            ("compare", "--prompt", "triage", "--baseline", "v1", "--candidate", "v2",
             "--shares", "eighty"),
            "--shares 'eighty': pass baseline/candidate traffic, e.g. 80/20",
        ),
        (("report", "--store", "chdb://nowhere"), "start `closedloop serve --store chdb://nowhere`"),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else "",
)  # fmt: skip
def test_a_bad_option_value_is_one_line_with_the_fix(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    code = 2 if args[0] == "serve" else 1
    assert message in one_error_line(cli(*args, cwd=tmp_path), args[0], code=code)


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as s:
        port = str(s.server_address[1])
        line = one_error_line(cli("test-server", "--port", port, cwd=tmp_path), "test-server")
    assert f"cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in line
    assert line.endswith("pass another --port (0 picks a free one) or --host")


def test_an_unexpected_error_names_debug_which_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("a file where the store's directory should be")
    store = f"--store=chdb://{tmp_path}/store"

    line = one_error_line(cli("migrate", store, cwd=tmp_path), "migrate")
    assert line == (
        f"closedloop migrate: FileExistsError: [Errno 17] File exists: '{tmp_path}/store' "
        "(run with --debug for the traceback)"
    )

    debug = cli("--debug", "migrate", store, cwd=tmp_path)
    assert debug.code == 1
    assert "Traceback" in debug.stderr
    assert "FileExistsError" in debug.stderr
    assert "run with --debug" not in debug.stderr
