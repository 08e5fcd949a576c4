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
    "done": "#2e7d32",
    "skipped": "#90a4ae",
    "failed": "#c62828",
    "no data": "#e0e0e0",
}
"""Tile states of the map, in legend order: this run wrote something, had nothing new to
write, failed somewhere (a cube, a unit or a product), or found no scene at all."""
_DONE = {"written", "appended", "done", "built"}
KEY_ROWS = 24
"""Tiles listed by number under the map; more would push the page down for little gain."""
_FAILED = {"failed", "blocked", "partial"}
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
        _figure("Tiles by status", tile_map(report)),
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
    found = {str(k): int(v) for k, v in inputs.get("found_per_collection", {}).items()}
    dropped: dict[str, Counter] = defaultdict(Counter)
    if "dropped_per_collection" in inputs:
        for collection, reasons in inputs["dropped_per_collection"].items():
            dropped[str(collection) or "unknown"].update(
                {str(r): int(n) for r, n in reasons.items()}
            )
    else:  # reports written before the counts were kept
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
    out = [f'<svg width="700" height="{height}" {_FONT}>']
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
        text = f"{used.get(name, 0)} used, {total_dropped} dropped"
        if name in found:
            text = f"{found[name]} found: {text}"
        out.append(f'<text x="{x + 4:.1f}" y="{y + 13}">{_esc(text)}</text>')
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
    """Each tile's state for the map: failed if any of its cube, units or products failed,
    done if any of them wrote something, no data if its cube found no scene, else skipped."""
    seen: dict[str, set[str]] = defaultdict(set)
    for key, record in report.get("cubes", {}).items():
        status = str(record.get("status") or "")
        if status not in ("no data", *_FAILED):
            status = "done" if record.get("steps_written") else "skipped"
        seen[str(record.get("tile") or key)].add(status)
    for tile, units in report.get("unit_results", {}).items():
        for unit in units:
            status = str(unit.get("status", "skipped"))
            if status == "done" and not unit.get("steps_written"):
                status = "skipped"  # the unit's dates were searched again but none was new
            seen[str(tile)].add(status)
    for key, record in report.get("products", {}).items():
        tile = str(record.get("tile") or key.rsplit("/", 1)[-1])
        seen[tile].add(str(record.get("status", "skipped")))
    for tile in report.get("tiles", {}):
        seen[str(tile)]  # planned tiles without any record
    out = {}
    for tile, statuses in sorted(seen.items()):
        if statuses & _FAILED:
            out[tile] = "failed"
        elif statuses & _DONE:
            out[tile] = "done"
        elif not statuses or statuses <= {"no data"}:
            out[tile] = "no data"
        else:
            out[tile] = "skipped"
    return out


def tile_map(report: dict) -> str:
    """The tile map: footprints in lon/lat when the report has them, else the grid layout."""
    status = tile_status(report)
    outlines = report.get("tiles") or {}
    if outlines and set(status) <= set(outlines):
        return tile_outline_svg(status, outlines)
    return tile_map_svg(status)


def _legend(y: float, x: float = 4.0) -> list[str]:
    out = []
    for state, fill in STATUS_COLOURS.items():
        out.append(
            f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" fill="{fill}" stroke="#757575" stroke-width="0.5"/>'
        )
        out.append(f'<text x="{x + 14:.0f}" y="{y:.0f}">{_esc(state)}</text>')
        x += 24 + 6.5 * len(state)
    return out


def tile_outline_svg(status: dict[str, str], outlines: dict[str, list]) -> str:
    """One polygon per tile, its footprint in lon/lat (north up, longitudes scaled by the
    cosine of the mean latitude so the tiles keep their shape), coloured by status.

    Tiles of neighbouring UTM zones overlap on the ground, so fills are translucent and
    each tile carries a number, listed under the map with its id and state (the first
    `KEY_ROWS` tiles; every polygon also names itself on hover)."""
    import math

    rings = {t: [(float(x), float(y)) for x, y in outlines[t]] for t in status}
    lons = [x for r in rings.values() for x, _ in r]
    lats = [y for r in rings.values() for _, y in r]
    if not lons:
        return ""
    kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span = max((max(lons) - min(lons)) * kx, max(lats) - min(lats)) or 1.0
    size, pad, top = 260.0, 6.0, 18.0
    scale = size / span
    width = (max(lons) - min(lons)) * kx * scale + 2 * pad
    height = (max(lats) - min(lats)) * scale
    keyed = list(status)[:KEY_ROWS]
    key_top = top + height + pad + 24
    total_h = key_top + 14 * len(keyed) + (14 if len(status) > len(keyed) else 0) + 4
    out = [f'<svg width="{max(width, 330):.0f}" height="{total_h:.0f}" {_FONT}>']
    out.append(
        f'<text x="{pad:.0f}" y="12">lon {min(lons):.3f} to {max(lons):.3f}, '
        f"lat {min(lats):.3f} to {max(lats):.3f}</text>"
    )

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return pad + (lon - min(lons)) * kx * scale, top + (max(lats) - lat) * scale

    for tile, state in status.items():
        points = " ".join("{:.1f},{:.1f}".format(*xy(x, y)) for x, y in rings[tile])
        out.append(
            f'<polygon points="{points}" fill="{STATUS_COLOURS[state]}" fill-opacity="0.75" stroke="#263238" stroke-width="1" data-tile="{_esc(tile)}"><title>{_esc(tile)}: {_esc(state)}</title></polygon>'
        )
    for n, tile in enumerate(keyed, 1):
        corners = rings[tile][:-1] or rings[tile]
        x, y = xy(
            sum(c[0] for c in corners) / len(corners), sum(c[1] for c in corners) / len(corners)
        )
        out.append(
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-weight="bold" fill="#111">{n}</text>'
        )
    out += _legend(top + height + pad + 14)
    for n, tile in enumerate(keyed, 1):
        y = key_top + 14 * (n - 1) + 10
        out.append(
            f'<text x="{pad:.0f}" y="{y:.0f}">{n}  {_esc(tile)}: {_esc(status[tile])}</text>'
        )
    if len(status) > len(keyed):
        y = key_top + 14 * len(keyed) + 10
        out.append(
            f'<text x="{pad:.0f}" y="{y:.0f}">and {len(status) - len(keyed)} more (hover a tile)</text>'
        )
    out.append("</svg>")
    return "".join(out)


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
    out = [f'<svg width="{max(x0, 330)}" height="{height}" {_FONT}>']
    for zone in zones:
        out.append(f'<text x="{spans[zone][0]}" y="11">zone {zone[0]}{_esc(zone[1])}</text>')
    for zone_n, hemi, col, row, tile, state in cells:
        x = spans[(zone_n, hemi)][0] + (col - spans[(zone_n, hemi)][1]) * size
        y = 16 + (top_row - row) * size
        fill = STATUS_COLOURS.get(state, "#bdbdbd")
        out.append(
            f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="{fill}"><title>{_esc(tile)}: {_esc(state)}</title></rect>'
        )
    out += _legend(height - 10)
    out.append("</svg>")
    return "".join(out)
