"""Column names, types and descriptions, read from docs/data-dictionary.md: one source for the
data dictionary people read and the column tables the Dagster UI shows.

The dictionary's tables have a ``column | type | unit / meaning`` header. A row may name several
columns (``call_oi, put_oi, total_oi``; ``type_count_daily/weekly/monthly/quarterly``), key
columns are bold, and a row without a type (``as in snapshots``) takes the type and meaning of
the same column in the table it names, or else in the first table above that has it. Tests check
that the dictionary lists every column of every lake table, with its SQL type.
No heavy import: the Dagster code location reads this when it loads.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DATA_DICTIONARY: Final[Path] = Path(__file__).resolve().parents[1] / "docs" / "data-dictionary.md"
SAME_COLUMNS_AS: Final[dict[str, str]] = {"hourly_sample": "expiries"}
"""Tables the dictionary describes as another's columns ("The `expiries` columns, for …")."""

_HEADER = re.compile(r"^#{2,3}\s+(?P<names>[a-z_]+(?:\s*/\s*[a-z_]+)*)(?:\s+—.*)?$")
_TABLE_HEADER = re.compile(r"^\|\s*column\s*\|\s*type\s*\|")
_AS_IN = re.compile(r"^as in (?P<table>[a-z_]+)$")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    description: str


def _names(cell: str) -> list[str]:
    """``**symbol**, **computed_at**`` → both; ``type_count_daily/weekly`` → type_count_daily,
    type_count_weekly."""
    names: list[str] = []
    for part in cell.replace("*", "").replace("`", "").split(","):
        first, *others = (piece.strip() for piece in part.split("/"))
        if not first:
            continue
        names.append(first)
        stem = first.rsplit("_", 1)[0]
        names += [f"{stem}_{other}" for other in others if other]
    return names


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_dictionary(text: str) -> dict[str, tuple[Column, ...]]:
    """Every table of the dictionary, by table (or view) name, columns in the listed order."""
    tables: dict[str, list[Column]] = {}
    current: list[str] = []
    in_table = False
    for line in text.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            current = [name.strip() for name in header["names"].split("/")]
            in_table = False
            continue
        if line.startswith("#"):
            current, in_table = [], False
            continue
        if _TABLE_HEADER.match(line):
            in_table = bool(current)
            continue
        if not in_table or not line.startswith("|"):
            in_table = in_table and line.startswith("|")
            continue
        cells = _cells(line)
        if len(cells) < 3 or set(cells[0]) <= {"-", ":"}:
            continue
        for name in _names(cells[0]):
            column = _resolve(tables, name, cells[1], cells[2])
            for table in current:
                tables.setdefault(table, []).append(column)
    return {table: tuple(columns) for table, columns in tables.items()}


def _resolve(tables: dict[str, list[Column]], name: str, kind: str, meaning: str) -> Column:
    """A row with no type: the same column from the table it names, else the first table
    above that has it."""
    if kind:
        return Column(name, kind, meaning)
    named = _AS_IN.match(meaning)
    sources = [tables.get(named["table"], [])] if named else list(tables.values())
    for columns in sources:
        for column in columns:
            if column.name == name:
                return column
    return Column(name, kind, meaning)


@functools.cache
def data_dictionary(path: Path = DATA_DICTIONARY) -> dict[str, tuple[Column, ...]]:
    """The parsed dictionary; empty when the file is not there (an install without docs/)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_dictionary(text)


def table_columns(table: str) -> tuple[Column, ...]:
    """The columns of a lake table or view as the dictionary describes them."""
    dictionary = data_dictionary()
    return dictionary.get(SAME_COLUMNS_AS.get(table, table), ())
