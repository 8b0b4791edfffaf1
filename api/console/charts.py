"""Server-rendered SVG charts (no script, no external asset): stacked bars of calls per day,
of the pool's numbers per region and per mode, and of extension slots. Each chart also comes
as a table in the page, for screen readers and text browsers; the SVG carries a title and
per-bar titles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from routing.console_views import DayCalls, PoolUse
from routing.reasons import Reason

# Colour-blind-safe (Okabe-Ito) series colours; every series is also named in a legend.
PALETTE = ("#009E73", "#D55E00", "#0072B2", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#999999")
POOL_SERIES = (("free", "free"), ("in_use", "in use"), ("cooling_down", "cooling down"),
               ("quarantined", "quarantined"), ("retired", "retired"))


@dataclass(frozen=True)
class Bar:
    label: str
    parts: tuple[tuple[str, int], ...]  # (series, value) in series order


def series_name(key: str) -> str:
    """A call-per-day series in words: "bridged", or the refusal's reason."""
    if key == Reason.BRIDGED:
        return "bridged"
    try:
        return f"rejected: {Reason(key).text}"
    except ValueError:
        return "rejected: reason not recorded" if key == "unknown" else key


def day_series(days: Sequence[DayCalls]) -> list[str]:
    """Bridged first, then every reason that occurs, in a stable order."""
    seen = {k for d in days for k in d.counts}
    ordered = [r.value for r in Reason if r.value in seen]
    return ordered + sorted(seen - set(ordered))


def calls_chart(days: Sequence[DayCalls]) -> str:
    series = day_series(days)
    bars = [Bar(label=d.day.strftime("%m-%d"),
                parts=tuple((s, d.counts.get(s, 0)) for s in series)) for d in days]
    return _stacked_columns(bars, series, "Calls per day: bridged and each rejection reason",
                            series_name)


def pool_chart(pool: Sequence[PoolUse], by: str = "region") -> str:
    """The pool's numbers per state, one bar per ``by`` (region or mode: the rows of
    ``routing.console_views.pool_by``)."""
    bars = [Bar(label=p.region or "(no region)",
                parts=tuple((key, int(getattr(p, key))) for key, _ in POOL_SERIES))
            for p in pool]
    names = dict(POOL_SERIES)
    return _stacked_rows(bars, [k for k, _ in POOL_SERIES], f"Pool numbers by {by} and state",
                         lambda k: names[k])


def slots_chart(pool: Sequence[PoolUse]) -> str:
    """Extension slots per region (the rows of ``pool_by`` region): held by an active
    binding, or free."""
    bars = [Bar(label=p.region or "(no region)",
                parts=(("free", max(p.slots - p.slots_in_use, 0)), ("in_use", p.slots_in_use)))
            for p in pool if p.slots]
    names = {"in_use": "slots in use", "free": "slots free"}
    # The pool chart's order, so "free" and "in use" have the same colours in both.
    return _stacked_rows(bars, ["free", "in_use"], "Extension slots by region: free and in use",
                         lambda k: names[k])


def _colour(series: list[str], key: str) -> str:
    return PALETTE[series.index(key) % len(PALETTE)]


def _legend(series: list[str], name: Callable[[str], str], y: int) -> list[str]:
    out = []
    for i, key in enumerate(series):
        ly = y + i * 18
        out.append(f'<rect x="8" y="{ly}" width="12" height="12" '
                   f'fill="{_colour(series, key)}"/>')
        out.append(f'<text x="26" y="{ly + 10}">{escape(name(key))}</text>')
    return out


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'role="img" class="chart" font-size="12" font-family="sans-serif">'
            f'<title>{escape(title)}</title>' + "".join(body) + "</svg>")


def _stacked_columns(bars: list[Bar], series: list[str], title: str,
                     name: Callable[[str], str]) -> str:
    width, plot_h, top, left = 640, 200, 10, 40
    peak = max((sum(v for _, v in b.parts) for b in bars), default=0) or 1
    step = (width - left - 10) / max(len(bars), 1)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
            f'stroke="#444"/>',
            f'<text x="4" y="{top + 10}">{peak}</text>',
            f'<text x="4" y="{top + plot_h}">0</text>']
    for i, bar in enumerate(bars):
        x = left + i * step + step * 0.15
        w = step * 0.7
        y: float = top + plot_h
        for key, value in bar.parts:
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                        f'fill="{_colour(series, key)}"><title>{escape(bar.label)}: '
                        f'{escape(name(key))} {value}</title></rect>')
        if len(bars) <= 16 or i % 2 == 0:
            body.append(f'<text x="{x + w / 2:.1f}" y="{top + plot_h + 14}" '
                        f'text-anchor="middle">{escape(bar.label)}</text>')
    legend_y = top + plot_h + 28
    body += _legend(series, name, legend_y)
    return _svg(width, legend_y + 18 * max(len(series), 1) + 4, title, body)


def _stacked_rows(bars: list[Bar], series: list[str], title: str,
                  name: Callable[[str], str]) -> str:
    width, left, row_h = 640, 110, 26
    peak = max((sum(v for _, v in b.parts) for b in bars), default=0) or 1
    body: list[str] = []
    for i, bar in enumerate(bars):
        y = 6 + i * row_h
        body.append(f'<text x="4" y="{y + 15}">{escape(bar.label[:16])}</text>')
        x = float(left)
        total = 0
        for key, value in bar.parts:
            total += value
            if not value:
                continue
            w = (width - left - 60) * value / peak
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" '
                        f'fill="{_colour(series, key)}"><title>{escape(bar.label)}: '
                        f'{escape(name(key))} {value}</title></rect>')
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + 15}">{total}</text>')
    legend_y = 10 + len(bars) * row_h
    body += _legend(series, name, legend_y)
    return _svg(width, legend_y + 18 * len(series) + 4, title, body)
