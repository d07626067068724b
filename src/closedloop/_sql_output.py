"""``closedloop sql``'s output: a table for people, CSV or JSON for programs.

Values arrive as ClickHouse's JSON gives them (strings, numbers, ``null``, arrays and maps
as JSON; decimals and ``inf``/``nan`` as strings, so every digit survives). A value that
is not a string is written as JSON in every format (``true``, ``[1, 2]``, ``{"k": 1}``),
so CSV and the table show the same text; ``NULL`` is empty in CSV.
"""

from __future__ import annotations

import csv
import enum
import json
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # every command imports this module; only ``sql`` opens a store
    from closedloop.store._readonly_sql import SqlResult


class OutputFormat(str, enum.Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def write(result: SqlResult, output: OutputFormat, console: Console, stream: IO[str]) -> None:
    """``result`` in ``output``: the table on ``console``, CSV and JSON on ``stream``."""
    if output is OutputFormat.TABLE:
        console.print(_table(result))
    elif output is OutputFormat.CSV:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(name for name, _ in result.columns)
        writer.writerows(
            ["" if value is None else _text(value) for value in row] for row in result.rows
        )
    else:
        stream.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")


def _table(result: SqlResult) -> Table:
    """Every column headed by its name and type; cells as plain text (never rich markup,
    whatever the data holds)."""
    count = len(result.rows)
    table = Table(caption=f"{count} row{'' if count == 1 else 's'}")
    for name, kind in result.columns:
        table.add_column(Text(name) + Text(f"\n{kind}", style="dim"))
    for row in result.rows:
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> Text:
    return Text("NULL", style="dim") if value is None else Text(_text(value))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
