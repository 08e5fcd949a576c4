"""Charts of the run report as inline SVG: readable at a glance, offline, no script.

Inline ``<svg>`` in HTML5 needs no namespace, so the page names no URL at all.
Why hand-written SVG rather than a plotting library: the report is one self-contained HTML
file that must open from a bucket without network or JavaScript; four simple charts (bars,
stacked bars, a date x tile heat strip, a tile grid) are a few dozen lines of SVG, while
matplotlib would add a heavy import to every run and a vendored JS library a script. Every
text that came from outside (collection names, reasons, tile ids) is escaped.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict

STATUS_COLOURS = {
    "failed": "#c62828",
    "partial": "#ef6c00",
    "written": "#2e7d32",
    "skipped": "#90a4ae",
    "no data": "#e0e0e0",
}
REASON_COLOURS = ("#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#9e9d24")
USED_COLOUR = "#1565c0"
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'


def charts_section(report: dict) -> str:
    """The report's charts: stage times, inputs per collection, masked fraction, tile map."""
    parts = [
        _figure("Time per stage (s)", stage_times_svg(report.get("timings_s", {}))),
        _figure(
            "Items used and dropped per collection, by reason",
            inputs_svg(report.get("inputs", {})),
        ),
        _figure(
            "Masked fraction per date and tile (0 white, 1 dark)",
            masked_svg(report.get("masked_fraction", {})),
        ),
        _figure("Tiles by status", tile_map_svg(tile_status(report))),
    ]
    body = "".join(p for p in parts if p)
    return f'<h2>At a glance</h2><div class="charts">{body}</div>' if body else ""


def _figure(title: str, svg: str) -> str:
    if not svg:
        return ""
    return f"<figure><figcaption>{html.escape(title)}</figcaption>{svg}</figure>"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def stage_times_svg(timings: dict) -> str:
    """Horizontal bars, one per stage, longest first."""
    rows = sorted(((str(k), float(v)) for k, v in timings.items()), key=lambda kv: -kv[1])
    if not rows:
        return ""
    top = max(v for _, v in rows) or 1.0
    width, label_w, bar_w, row_h = 520, 150, 300, 18
    out = [f'<svg width="{width}" height="{row_h * len(rows) + 4}" {_FONT}>']
    for i, (name, value) in enumerate(rows):
        y = i * row_h + 2
        w = max(1.0, bar_w * value / top)
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{_esc(name)}</text>')
        out.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="#546e7a"><title>{_esc(name)}: {value:.2f} s</title></rect>'
        )
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{value:.1f}</text>')
    out.append("</svg>")
    return "".join(out)


def inputs_svg(inputs: dict) -> str:
    """Per collection: a bar of items used, then one segment per drop reason."""
    used = {str(k): int(v) for k, v in inputs.get("used_per_collection", {}).items()}
    dropped: dict[str, Counter] = defaultdict(Counter)
    for drop in inputs.get("dropped", []):
        dropped[str(drop.get("collection") or "unknown")][str(drop.get("reason"))] += 1
    collections = sorted(set(used) | set(dropped))
    if not collections:
        return ""
    reasons = sorted({r for c in dropped.values() for r in c})
    colour = {r: REASON_COLOURS[i % len(REASON_COLOURS)] for i, r in enumerate(reasons)}
    top = max(used.get(c, 0) + sum(dropped[c].values()) for c in collections) or 1
    label_w, bar_w, row_h = 150, 300, 20
    legend_h = 18
    height = row_h * len(collections) + legend_h + 6
    out = [f'<svg width="640" height="{height}" {_FONT}>']
    for i, name in enumerate(collections):
        y = i * row_h + 2
        x = float(label_w)
        out.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_esc(name)}</text>')
        segments = [("used", used.get(name, 0), USED_COLOUR)] + [
            (f"dropped: {r}", dropped[name][r], colour[r]) for r in reasons if dropped[name][r]
        ]
        for label, count, fill in segments:
            w = bar_w * count / top
            if w <= 0:
                continue
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 5}" fill="{fill}"><title>{_esc(name)} {_esc(label)}: {count}</title></rect>'
            )
            x += w
        total_dropped = sum(dropped[name].values())
        out.append(
            f'<text x="{x + 4:.1f}" y="{y + 13}">{used.get(name, 0)} used, {total_dropped} dropped</text>'
        )
    y = row_h * len(collections) + 4
    x = float(label_w)
    for label, fill in [("used", USED_COLOUR)] + [(f"dropped: {r}", colour[r]) for r in reasons]:
        out.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{fill}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{y + 9}">{_esc(label)}</text>')
        x += 24 + 6.5 * len(label)
    out.append("</svg>")
    return "".join(out)


def masked_svg(masked: dict) -> str:
    """One row per tile, one cell per time step (in time order), shaded by masked fraction."""
    tiles = sorted(t for t, rows in masked.items() if rows)
    if not tiles:
        return ""
    times = sorted({str(r.get("time")) for t in tiles for r in masked[t]})
    index = {t: i for i, t in enumerate(times)}
    label_w, row_h = 110, 16
    cell = max(2.0, min(12.0, 560.0 / max(1, len(times))))
    width = label_w + cell * len(times) + 10
    height = row_h * len(tiles) + 20
    out = [f'<svg width="{width:.0f}" height="{height}" {_FONT}>']
    for j, tile in enumerate(tiles):
        y = j * row_h + 2
        out.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{_esc(tile)}</text>')
        for row in masked[tile]:
            fraction = float(row.get("masked_fraction", 0.0))
            grey = int(round(255 - 200 * min(max(fraction, 0.0), 1.0)))
            x = label_w + cell * index[str(row.get("time"))]
            tip = f"{tile} {row.get('time')} {row.get('platform', '')}: {fraction:.0%} masked"
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{cell:.1f}" height="{row_h - 3}" fill="rgb({grey},{grey},{min(255, grey + 20)})" stroke="#ddd" stroke-width="0.3"><title>{_esc(tip)}</title></rect>'
            )
    y = row_h * len(tiles) + 14
    out.append(f'<text x="{label_w}" y="{y}">{_esc(times[0][:10])}</text>')
    out.append(
        f'<text x="{width - 10:.0f}" y="{y}" text-anchor="end">{_esc(times[-1][:10])}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def tile_status(report: dict) -> dict[str, str]:
    """Status of each tile: failed if any of its units failed, written if any wrote, else skipped."""
    seen: dict[str, set[str]] = defaultdict(set)
    for key, record in report.get("cubes", {}).items():
        status = str(
            record.get("status") or ("written" if record.get("steps_written") else "skipped")
        )
        seen[str(record.get("tile") or key)].add(status)
    for key, record in report.get("products", {}).items():
        tile = str(record.get("tile") or key.rsplit("/", 1)[-1])
        seen[tile].add(str(record.get("status", "skipped")))
    out = {}
    for tile, statuses in seen.items():
        if "failed" in statuses:
            out[tile] = "failed"
        elif "written" in statuses:
            out[tile] = "written"
        elif statuses <= {"no data"}:
            out[tile] = "no data"
        else:
            out[tile] = "skipped"
    return out


def tile_map_svg(status: dict[str, str]) -> str:
    """The tiles on the processing grid (column right, row up; UTM zones side by side)."""
    from geoproc.grid import TILE_ID_PATTERN

    cells = []
    for tile, state in status.items():
        m = TILE_ID_PATTERN.match(tile)
        if m:
            cells.append((int(m["zone"]), m["hemi"], int(m["col"]), int(m["row"]), tile, state))
    if not cells:
        return ""
    zones = sorted({(c[0], c[1]) for c in cells})
    size, gap = 28, 18
    spans = {}
    x0 = 4
    for zone in zones:
        in_zone = [c for c in cells if (c[0], c[1]) == zone]
        cols = [c[2] for c in in_zone]
        spans[zone] = (x0, min(cols))
        x0 += (max(cols) - min(cols) + 1) * size + gap
    rows = [c[3] for c in cells]
    top_row, bottom_row = max(rows), min(rows)
    height = (top_row - bottom_row + 1) * size + 40
    out = [f'<svg width="{max(x0, 200)}" height="{height}" {_FONT}>']
    for zone in zones:
        out.append(f'<text x="{spans[zone][0]}" y="11">zone {zone[0]}{_esc(zone[1])}</text>')
    for zone_n, hemi, col, row, tile, state in cells:
        x = spans[(zone_n, hemi)][0] + (col - spans[(zone_n, hemi)][1]) * size
        y = 16 + (top_row - row) * size
        fill = STATUS_COLOURS.get(state, "#bdbdbd")
        out.append(
            f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="{fill}"><title>{_esc(tile)}: {_esc(state)}</title></rect>'
        )
    x = 4
    y = height - 10
    for state in sorted(set(status.values())):
        out.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{STATUS_COLOURS.get(state, "#bdbdbd")}"/>'
        )
        out.append(f'<text x="{x + 14}" y="{y}">{_esc(state)}</text>')
        x += 24 + 7 * len(state)
    out.append("</svg>")
    return "".join(out)
