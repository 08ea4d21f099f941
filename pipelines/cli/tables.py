"""Query results as text a person reads in a terminal.

A result whose columns fit the terminal is a table; one that does not is shown one record at a
time, a ``column | value`` line per column (psql's expanded display, DuckDB's ``.mode line``),
so no column is squeezed into a few characters. Numbers are rounded for display only
(assets.display). Plain text, no colour: the output is piped and diffed as often as it is read.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from assets.display import display_value

if TYPE_CHECKING:
    import polars as pl

NULL: Final[str] = "NULL"
MAX_TABLE_CELL: Final[int] = 40
"""Longer text is cut (with …) in the table layout; the record layout shows it whole."""
SEPARATOR: Final[str] = " | "


@dataclass(frozen=True, slots=True)
class Result:
    """Column names, which of them are numeric (right-aligned), and the rows as display text."""

    columns: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: tuple[tuple[str, ...], ...]
    total_rows: int

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, limit: int | None = None) -> Result:
        shown = frame if limit is None else frame.head(limit)
        return cls(
            columns=tuple(frame.columns),
            numeric=tuple(dtype.is_numeric() for dtype in frame.dtypes),
            rows=tuple(
                tuple(display_value(value, null=NULL) for value in row) for row in shown.iter_rows()
            ),
            total_rows=frame.height,
        )


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` when set, 80 when there is no terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_text(result: Result, width: int | None, *, cut: bool = True) -> str | None:
    """The table layout, or None when it is wider than ``width`` (None: any width fits), or,
    unless ``cut``, when a cell is longer than ``MAX_TABLE_CELL``."""
    if not cut and any(len(cell) > MAX_TABLE_CELL for row in result.rows for cell in row):
        return None
    cells = [[_cut(cell, MAX_TABLE_CELL) for cell in row] for row in result.rows]
    widths = [
        max([len(name), *(len(row[index]) for row in cells)])
        for index, name in enumerate(result.columns)
    ]
    if width is not None and sum(widths) + len(SEPARATOR) * (len(widths) - 1) > width:
        return None

    def line(values: Sequence[str], header: bool = False) -> str:
        padded = [
            value.rjust(size) if numeric and not header else value.ljust(size)
            for value, size, numeric in zip(values, widths, result.numeric, strict=True)
        ]
        return SEPARATOR.join(padded).rstrip()

    rule = "-+-".join("-" * size for size in widths)
    return "\n".join([line(result.columns, header=True), rule, *(line(row) for row in cells)])


def records_text(result: Result) -> str:
    """The record layout: per row a ``-[ row N ]`` line, then ``column | value`` lines."""
    name_width = max((len(name) for name in result.columns), default=0)
    blocks = []
    for number, row in enumerate(result.rows, start=1):
        lines = [f"-[ row {number} ]" + "-" * max(0, name_width - 6)]
        lines += [
            f"{name.ljust(name_width)}{SEPARATOR}{value}".rstrip()
            for name, value in zip(result.columns, row, strict=True)
        ]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def render(result: Result, width: int | None, *, cut: bool = True) -> str:
    """The table when it fits ``width`` (and, unless ``cut``, holds no cell it would cut),
    else the records; then how many rows there are."""
    if not result.columns:
        return "(no columns)"
    body = table_text(result, width, cut=cut)
    if body is None:
        body = records_text(result)
    shown, total = len(result.rows), result.total_rows
    if shown < total:
        footer = (
            f"({shown} of {total} rows shown; --output FILE or --format csv|json|parquet "
            "writes them all)"
        )
    else:
        footer = f"({total} row{'' if total == 1 else 's'})"
    return f"{body}\n{footer}" if result.rows else footer
