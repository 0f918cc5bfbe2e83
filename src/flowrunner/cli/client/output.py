"""How results are printed: Rich tables for people, ``--output json|yaml`` for scripts.

JSON and YAML print the API's own objects (the keys docs/api.md lists, which stay stable);
tables pick the columns a person wants and shorten times. Data goes to stdout, messages to
stderr, so ``flowrunner flows list -o json | jq`` always reads clean JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    format: Callable[[Any], str] | None = None
    # Ids are copied and pasted: never folded over two lines (other columns give way).
    no_wrap: bool = False


def when(value: Any) -> str:
    """An ISO time as ``2026-12-07 07:35:31`` (UTC, as the server sends it)."""
    if not value:
        return ""
    text = str(value).replace("T", " ")
    return text[:19]


def ms(value: Any) -> str:
    return "" if value is None else f"{float(value):.0f} ms"


def stdout_console() -> Console:
    # Not a terminal: no colours, and wide enough that 32-character ids are never folded.
    if sys.stdout.isatty():
        return Console(soft_wrap=False)
    return Console(width=240, no_color=True, highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def to_yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def print_data(value: Any, output: Output) -> None:
    """``value`` as JSON or YAML on stdout (for table output, callers draw their own)."""
    text = to_yaml(value) if output is Output.yaml else to_json(value)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def emit_list(
    items: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    output: Output,
    *,
    empty: str = "nothing found",
) -> None:
    if output is not Output.table:
        print_data(list(items), output)
        return
    if not items:
        stderr_console().print(f"[dim]{escape(empty)}[/]")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column.header, overflow="fold", no_wrap=column.no_wrap)
    for item in items:
        table.add_row(*(escape(_cell(item.get(c.key), c.format)) for c in columns))
    stdout_console().print(table)


def emit_record(
    record: Mapping[str, Any], output: Output, *, fields: Iterable[Column] | None = None
) -> None:
    """One object: JSON/YAML as it came, or a two-column table of its fields."""
    if output is not Output.table:
        print_data(dict(record), output)
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    chosen = list(fields) if fields is not None else [Column(k, k) for k in record]
    for column in chosen:
        table.add_row(escape(column.header), escape(_cell(record.get(column.key), column.format)))
    stdout_console().print(table)


def _cell(value: Any, format: Callable[[Any], str] | None) -> str:
    if format is not None:
        return format(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
