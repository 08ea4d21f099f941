"""PNG charts of the research series (matplotlib, Agg backend: no display needed).

Every chart is FIGSIZE × DPI pixels exactly (no tight bounding box), one panel per symbol where a
chart is per expiry, so sizes are predictable for the Dagster UI and the tests.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Final

import polars as pl

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE: Final[tuple[float, float]] = (12.0, 7.0)
DPI: Final[int] = 100
PIXELS: Final[tuple[int, int]] = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
"""(width, height) of every PNG."""


@functools.cache
def _pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend, imported on first use: the import is slow, and
    every ``termstore`` command (all import this package) would pay for it otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(figure)
    return buffer.getvalue()


def _panels(count: int) -> tuple[Figure, list[Axes]]:
    columns = 2 if count > 1 else 1
    rows = (count + columns - 1) // columns
    figure, axes = _pyplot().subplots(rows, columns, figsize=FIGSIZE, squeeze=False)
    flat = [axis for row in axes for axis in row]
    for spare in flat[count:]:
        spare.set_visible(False)
    return figure, flat[: max(count, 1)]


def _empty(axis: Axes, text: str) -> None:
    axis.text(0.5, 0.5, text, ha="center", va="center", transform=axis.transAxes, color="grey")


def term_structure_png(curves: Mapping[str, Mapping[str, pl.DataFrame]]) -> bytes:
    """ATM IV by days to expiry, per symbol; ``curves[symbol][label]`` is a term_structure frame
    (e.g. labels "now", "1 day ago", "7 days ago")."""
    figure, axes = _panels(len(curves))
    for axis, (symbol, by_label) in zip(axes, curves.items(), strict=False):
        drawn = False
        for label, frame in by_label.items():
            points = frame.filter(pl.col("years_to_expiry") > 0, pl.col("atm_iv").is_not_null())
            if points.height:
                at = points["computed_at"][0]
                axis.plot(
                    points["days_to_expiry"],
                    points["atm_iv"],
                    marker="o",
                    label=f"{label} ({at:%Y-%m-%d %H:%M} UTC)",
                )
                drawn = True
        if not drawn:
            _empty(axis, "no snapshot stored")
        axis.set_title(f"{symbol} ATM IV term structure")
        axis.set_xlabel("days to expiry (08:00 UTC settlement)")
        axis.set_ylabel("ATM IV (vol points)")
        axis.grid(alpha=0.3)
        if drawn:
            axis.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def series_png(frame: pl.DataFrame, column: str, title: str, ylabel: str) -> bytes:
    """One line per symbol of ``column`` over ``computed_at``."""
    figure, axes = _pyplot().subplots(figsize=FIGSIZE)
    drawn = False
    for (symbol,), part in frame.filter(pl.col(column).is_not_null()).group_by(
        "symbol", maintain_order=True
    ):
        axis_data = part.sort("computed_at")
        axes.plot(axis_data["computed_at"], axis_data[column], label=str(symbol), linewidth=1.2)
        drawn = True
    if not drawn:
        _empty(axes, "no data in this window")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.set_xlabel("UTC")
    axes.grid(alpha=0.3)
    if drawn:
        axes.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    return _png(figure)


def oi_by_expiry_png(term_structures: Mapping[str, pl.DataFrame]) -> bytes:
    """Open interest per listed expiry (calls and puts stacked); anchors hatched and starred."""
    figure, axes = _panels(len(term_structures))
    for axis, (symbol, frame) in zip(axes, term_structures.items(), strict=False):
        rows = frame.filter(pl.col("years_to_expiry") > 0)
        if not rows.height:
            _empty(axis, "no snapshot stored")
            axis.set_title(f"{symbol} open interest by expiry")
            continue
        labels = [
            f"{expiry}★" if anchor else expiry
            for expiry, anchor in zip(rows["expiry"], rows["is_anchor"], strict=True)
        ]
        calls = rows["call_oi"].fill_null(0).to_list()
        puts = rows["put_oi"].fill_null(0).to_list()
        hatches = ["//" if anchor else "" for anchor in rows["is_anchor"]]
        positions = range(len(labels))
        call_bars = axis.bar(positions, calls, color="tab:green", label="calls")
        put_bars = axis.bar(positions, puts, bottom=calls, color="tab:red", label="puts")
        for bar, hatch in zip([*call_bars, *put_bars], hatches * 2, strict=True):
            bar.set_hatch(hatch)
        axis.set_xticks(list(positions), labels, rotation=45, ha="right", fontsize=8)
        at = rows["computed_at"][0]
        axis.set_title(f"{symbol} open interest by expiry ({at:%Y-%m-%d %H:%M} UTC)")
        axis.set_ylabel("open interest (coins)")
        axis.legend(title="★ hatched = anchor (monthly/quarterly)", fontsize=8, title_fontsize=8)
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return _png(figure)
