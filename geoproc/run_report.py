"""The run report: what a run found, used, dropped, masked, did and failed, as JSON and HTML.

Why both: the JSON is for machines (monitoring, tests, the next run), the HTML for the
person who has to decide whether a gap in the map is the catalog's, the clouds' or ours.
The HTML is one self-contained file (inline CSS, no scripts, no network assets) so it
opens from a bucket or a laptop alike; every text that came from outside (item ids,
collection names, error messages) is escaped, because catalogs and exceptions are not
trusted HTML. Links to the viewer and the STAC catalog are relative to
`{out}/runs/{run_id}/`, so the report keeps working when the output folder moves.

Masked fraction of a time step: the share of tile pixels that are NaN in the step's
reference band (`red` for optical steps, `vv` for SAR) in the cube, i.e. masked by the QA
layer (Fmask/SCL), fill, unreadable, or not observed - the same definition the products
see (HLS User Guide v2.0, Fmask bits; Claverie et al. 2018).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from geoproc import storage

REFERENCE_BAND = {"S1": "vv"}
DEFAULT_REFERENCE_BAND = "red"
OUTSIDE_TILES = "(outside every tile)"
"""Tile label of a dropped item whose footprint covers no tile of the run."""
UNKNOWN_TILES = "(not placed)"
"""Tile label of a dropped item the search could not place (unreadable, unknown collection)."""
VIEWER_LINK = "../../viewer/index.html"
CATALOG_LINK = "../../stac/catalog.json"


def inputs_summary(found) -> dict:
    """Items found, used and dropped per collection, drops by reason and tile, from a `SearchResult`.

    ``dropped`` keeps every dropped item with the tiles it covered (``tiles``; empty for
    items outside every tile); the counts per collection, reason and tile are derived from
    that list, so they always add up to it.
    """
    used: dict[str, set[str]] = {}
    for tile_search in found.tiles.values():
        for step in tile_search.steps:
            for item in step.items:
                used.setdefault(item.get("collection") or step.collection, set()).add(item["id"])
    dropped: dict[tuple, dict] = {}
    for drop in found.dropped:
        record = dict(drop)
        if "tiles" in drop:  # absent where the search could not place the item at all
            record["tiles"] = sorted(map(str, drop["tiles"] or []))
        dropped.setdefault(_drop_key(record), record)
    for tile_id, tile_search in found.tiles.items():
        for drop in tile_search.dropped:
            record = {**drop, "tiles": [tile_id]}
            dropped.setdefault(_drop_key(record), record)
    return _summary(
        found=int(found.found),
        found_per_collection=dict(getattr(found, "found_per_collection", {}) or {}),
        used={c: len(ids) for c, ids in used.items()},
        drops=list(dropped.values()),
    )


def merge_inputs(parts: list[dict]) -> dict:
    """One inputs summary from several (work units over disjoint periods of one or more tiles).

    Counts are summed over the parts: an item over two tiles counts once per tile.
    """
    used: Counter = Counter()
    found_per_collection: Counter = Counter()
    drops: dict[tuple, dict] = {}
    for part in parts:
        used.update(part.get("used_per_collection", {}))
        found_per_collection.update(part.get("found_per_collection", {}))
        for d in part.get("dropped", []):
            drops.setdefault(_drop_key(d), d)
    return _summary(
        found=sum(int(p.get("found", 0)) for p in parts),
        found_per_collection=dict(found_per_collection),
        used=dict(used),
        drops=list(drops.values()),
    )


def _drop_key(drop: dict) -> tuple:
    return (drop.get("id"), drop.get("reason"), tuple(drop.get("tiles") or ()))


def _tile_labels(drop: dict) -> list[str]:
    """The tiles a dropped item covered, or why there are none."""
    if "tiles" not in drop:
        return [UNKNOWN_TILES]
    return list(drop["tiles"]) or [OUTSIDE_TILES]


def _summary(*, found: int, found_per_collection: dict, used: dict, drops: list[dict]) -> dict:
    """The inputs record: totals, per-collection counts and the drops grouped by reason."""
    ordered = sorted(drops, key=lambda d: (str(d.get("reason")), str(d.get("id"))))
    per_collection: dict[str, Counter] = {}
    groups: dict[tuple[str, str], Counter] = {}
    for d in ordered:
        collection, reason = str(d.get("collection") or ""), str(d.get("reason"))
        per_collection.setdefault(collection, Counter())[reason] += 1
        tiles = groups.setdefault((collection, reason), Counter())
        tiles.update(_tile_labels(d))
    return {
        "found": found,
        "found_per_collection": dict(sorted(found_per_collection.items())),
        "used_per_collection": dict(sorted(used.items())),
        "dropped_per_reason": dict(sorted(Counter(str(d.get("reason")) for d in ordered).items())),
        "dropped_per_collection": {
            c: dict(sorted(r.items())) for c, r in sorted(per_collection.items())
        },
        "dropped_groups": [
            {
                "collection": c,
                "reason": r,
                "count": per_collection[c][r],
                "tiles": dict(sorted(tiles.items())),
            }
            for (c, r), tiles in sorted(groups.items())
        ],
        "dropped": ordered,
    }


def masked_fractions(out_url: str, tile_id: str, *, steps: list[str] | None = None) -> list[dict]:
    """Masked fraction per complete time step of a tile's cube (only `steps` when given).

    `steps` are labels `"{time}/{platform}"` as in a build record's `steps_written`;
    reading one band of those steps keeps this cheap on long series.
    """
    import xarray as xr

    from geoproc import zarr_layout
    from geoproc.cube.store import cube_location

    location = cube_location(out_url, tile_id)
    if not zarr_layout.is_store(location):
        return []
    ds = xr.open_zarr(storage.zarr_store(location, read_only=True), consolidated=True)
    times = ds["time"].values.astype("datetime64[s]").astype(str)
    platforms = ds["platform"].values.astype(str)
    complete = ds["time_complete"].values.astype(bool)
    labels = [f"{t}/{p}" for t, p in zip(times, platforms, strict=True)]
    wanted = set(steps) if steps is not None else None
    rows = []
    for i, label in enumerate(labels):
        if not complete[i] or (wanted is not None and label not in wanted):
            continue
        band = REFERENCE_BAND.get(platforms[i], DEFAULT_REFERENCE_BAND)
        if band not in ds:
            continue
        values = np.asarray(ds[band].isel(time=i).values)
        rows.append(
            {
                "time": str(times[i]),
                "platform": str(platforms[i]),
                "band": band,
                "masked_fraction": round(float(np.isnan(values).mean()), 4),
            }
        )
    return rows


LINK_LABELS = {
    "viewer": "map viewer",
    "stac_catalog": "STAC catalog",
    "prefect_flow_run": "Prefect flow run",
    "dask_performance_report": "Dask performance report",
}


def links(*, published: bool, extra: dict[str, str] | None = None) -> dict:
    """Links of the report: relative ones from `runs/{run_id}/` to the viewer and the STAC
    catalog when published, plus ``extra`` (the Prefect flow run's page, the Dask
    performance report) given by whoever ran the pipeline.

    An ``extra`` link that is neither http(s) nor relative (``javascript:``, ``file:``) is
    left out: the report must never carry an active link it did not make itself.
    """
    found = {"viewer": VIEWER_LINK, "stac_catalog": CATALOG_LINK} if published else {}
    for name, href in (extra or {}).items():
        if href and (is_relative(str(href)) or urlsplit(str(href)).scheme in ("http", "https")):
            found[str(name)] = str(href)
    return found


def is_relative(href: str) -> bool:
    """True for a path relative to the report's folder (no scheme, host or leading slash)."""
    parts = urlsplit(href)
    return not (parts.scheme or parts.netloc or href.startswith("/"))


def tile_outlines(tiles) -> dict[str, list[list[float]]]:
    """Tile footprints as lon/lat rings (5 decimals, ~1 m) for the report's tile map."""
    out = {}
    for tile in tiles:
        if tile is None:
            continue
        ring = tile.footprint_lonlat.exterior.coords
        out[tile.id] = [[round(float(x), 5), round(float(y), 5)] for x, y in ring]
    return dict(sorted(out.items()))


def write_run_report(out: storage.Location, run_id: str, report: dict) -> dict[str, str]:
    """`report.json` and `report.html` under `{out}/runs/{run_id}/`; returns their URLs."""
    folder = out.join("runs", run_id)
    json_location, html_location = folder.join("report.json"), folder.join("report.html")
    storage.write_bytes_atomic(
        json_location, json.dumps(report, indent=2, sort_keys=True, default=str).encode()
    )
    storage.write_bytes_atomic(html_location, render_html(report).encode())
    # Reruns reuse the run id: each attempt is also kept, never overwritten, and indexed.
    from geoproc.publish.report_history import archive_report

    archived = archive_report(out, run_id, report, render=render_html)
    return {
        "json": json_location.url,
        "html": html_location.url,
        "attempt": archived["html"],
        "index": archived["index"],
    }


def render_html(report: dict) -> str:
    """The report as one self-contained HTML page (every outside text escaped)."""
    run_id = _text(report.get("run_id", ""))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>geoproc run {run_id}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>geoproc run {run_id}</h1>",
        _status_line(report),
        _glance_line(report),
        _links_section(report.get("links", {})),
        _charts(report),
        _request_section(report.get("request", {})),
        _timings_section(report.get("timings_s", {})),
        _inputs_section(report.get("inputs", {})),
        _units_section(report),
        _cubes_section(report.get("cubes", {})),
        _repairs_section(report),
        _masked_section(report.get("masked_fraction", {})),
        _products_section(report.get("products", {})),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _charts(report: dict) -> str:
    from geoproc.publish.report_charts import charts_section

    return charts_section(report)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}.num{text-align:right}.failed{color:#b00020;font-weight:bold}"
    ".ok{color:#1b5e20;font-weight:bold}.bar{display:inline-block;height:.8em;background:#90a4ae}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em 2.5em}figure{margin:0}"
    "figcaption{font-weight:bold;margin-bottom:.3em}summary{cursor:pointer;margin:.3em 0}"
    ".glance{font-size:1.05em}ul.links{display:flex;flex-wrap:wrap;gap:.3em 1.5em;"
    "padding-left:1.2em}"
)


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[Any]], *, numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_text(c)}</td>' if j in numeric else f"<td>{_text(c)}</td>"
            for j, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _details(summary: str, body: str) -> str:
    """A collapsed block (HTML `<details>`: no script needed to open it)."""
    return f"<details><summary>{_text(summary)}</summary>{body}</details>"


def _status_line(report: dict) -> str:
    status = str(report.get("status", "complete"))
    css = "ok" if status == "complete" else "failed"
    version = _text(report.get("software_version", ""))
    return f'<p>status: <span class="{css}">{_text(status)}</span> &middot; geoproc {version}</p>'


def _glance_line(report: dict) -> str:
    """One sentence with the numbers an operator checks first."""
    from geoproc.publish.report_charts import tile_status

    parts = []
    states = Counter(tile_status(report).values())
    if states:
        detail = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        parts.append(f"{sum(states.values())} tile(s): {detail}")
    inputs = report.get("inputs") or {}
    if inputs:
        dropped = len(inputs.get("dropped", []))
        used = sum(int(v) for v in inputs.get("used_per_collection", {}).values())
        parts.append(f"{inputs.get('found', 0)} item(s) found, {used} used, {dropped} dropped")
    timings = report.get("timings_s") or {}
    if timings:
        parts.append(f"{sum(float(v) for v in timings.values()):.0f} s over {len(timings)} stages")
    return f'<p class="glance">{_text(" · ".join(parts))}</p>' if parts else ""


def _links_section(found_links: dict) -> str:
    items = "".join(
        f'<li><a href="{_text(href)}">{_text(LINK_LABELS.get(name, name.replace("_", " ")))}</a></li>'
        for name, href in sorted(found_links.items())
    )
    note = (
        ""
        if "viewer" in found_links
        else "<p>nothing published in this run (no viewer or STAC links)</p>"
    )
    return (f'<h2>Links</h2><ul class="links">{items}</ul>' if items else "") + note


def _request_section(request: dict) -> str:
    if not request:
        return ""
    rows = [[k, ", ".join(map(str, v)) if isinstance(v, list) else v] for k, v in request.items()]
    return "<h2>Request</h2>" + _table(["field", "value"], rows)


def _timings_section(timings: dict) -> str:
    if not timings:
        return ""
    rows = [[stage, f"{float(s):.2f}"] for stage, s in timings.items()]
    return "<h2>Time per stage</h2>" + _table(["stage", "seconds"], rows, numeric={1})


def _inputs_section(inputs: dict) -> str:
    if not inputs:
        return ""
    out = [f"<h2>Inputs</h2><p>{_text(inputs.get('found', 0))} item(s) found</p>"]
    found = inputs.get("found_per_collection", {})
    used = inputs.get("used_per_collection", {})
    per_collection = inputs.get("dropped_per_collection", {})
    reasons = sorted({r for c in per_collection.values() for r in c})
    collections = sorted(set(found) | set(used) | set(per_collection))
    rows = [
        [
            c or "(unreadable)",
            found.get(c, ""),
            used.get(c, 0),
            sum(per_collection.get(c, {}).values()),
            *[per_collection.get(c, {}).get(r, 0) for r in reasons],
        ]
        for c in collections
    ]
    headers = ["collection", "found", "used", "dropped", *[f"dropped: {r}" for r in reasons]]
    out.append(_table(headers, rows, numeric=set(range(1, len(headers)))))
    drops = inputs.get("dropped", [])
    if drops:
        groups = [
            [
                g["collection"],
                g["reason"],
                g["count"],
                ", ".join(f"{t} ({n})" for t, n in g["tiles"].items()),
            ]
            for g in inputs.get("dropped_groups", [])
        ]
        out.append(f"<h3>Dropped items by reason ({len(drops)})</h3>")
        out.append(_table(["collection", "reason", "items", "tiles (items)"], groups, numeric={2}))
        rows = [
            [
                d.get("id", ""),
                d.get("collection", ""),
                d.get("reason", ""),
                ", ".join(_tile_labels(d)),
                _drop_detail(d),
            ]
            for d in drops
        ]
        out.append(
            _details(
                f"All {len(drops)} dropped items",
                _table(["item", "collection", "reason", "tiles", "detail"], rows),
            )
        )
    return "".join(out)


def _drop_detail(drop: dict) -> str:
    """What made the drop: the cloud cover, the source kept instead, the parse error."""
    if drop.get("cloud_cover") is not None:
        return f"cloud cover {float(drop['cloud_cover']):.1f} %"
    if drop.get("kept"):
        return f"kept {drop['kept']}"
    return str(drop.get("detail", ""))


def _units_section(report: dict) -> str:
    units = report.get("units")
    if not units:
        return ""
    counts = _table(["units", "count"], [[k, v] for k, v in units.items()], numeric={1})
    rows = [
        [
            r.get("unit", ""),
            r.get("status", ""),
            r.get("steps_written", ""),
            r.get("reason", ""),
            _asset_errors_text(r.get("asset_errors", [])),
        ]
        for results in report.get("unit_results", {}).values()
        for r in results
    ]
    headers = ["unit", "status", "steps written", "reason", "unreadable assets (masked)"]
    detail = _table(headers, rows) if rows else ""
    return "<h2>Work units</h2>" + counts + detail


def _asset_errors_text(errors: list[dict]) -> str:
    return "; ".join(
        f"{e.get('item', '')} {e.get('asset', '')}: {e.get('error', '')}" for e in errors
    )


def _cubes_section(cubes: dict) -> str:
    if not cubes:
        return ""
    rows = []
    for tile, record in sorted(cubes.items()):
        if "steps_written" not in record:
            rows.append([tile, record.get("status", ""), "", "", "", "", record.get("reason", "")])
            continue
        rows.append(
            [
                tile,
                record.get("status", "built"),
                len(record["steps_written"]),
                record.get("steps_skipped", 0),
                len(record.get("steps_repaired", [])),
                len(record.get("steps_refused", [])),
                _asset_errors_text(record.get("asset_errors", [])),
            ]
        )
    headers = [
        "tile",
        "status",
        "steps written",
        "steps already complete",
        "repaired",
        "refused",
        "asset errors",
    ]
    return "<h2>Cubes</h2>" + _table(headers, rows, numeric={2, 3, 4, 5})


def cube_repairs(report: dict) -> list[dict]:
    """Every cube step the run's verification found damaged, repaired or not, per tile.

    From the cube build records (regional runs) and the work units (backfills), with the
    metadata files a build restored; empty when the run repaired nothing.
    """
    rows = []
    records = [(tile, rec) for tile, rec in report.get("cubes", {}).items()]
    records += [
        (tile, unit) for tile, units in report.get("unit_results", {}).items() for unit in units
    ]
    for tile, rec in records:
        for outcome, key in (("repaired", "steps_repaired"), ("still damaged", "steps_damaged")):
            for step in rec.get(key, []):
                rows.append(
                    {
                        "tile": str(tile),
                        "step": f"{step.get('time', '')}/{step.get('platform', '')}",
                        "damage": _damage_text(step.get("damage")),
                        "outcome": outcome,
                    }
                )
        for name in rec.get("metadata_restored", []):
            rows.append(
                {"tile": str(tile), "step": "", "damage": f"metadata {name}", "outcome": "restored"}
            )
    return rows


def _damage_text(damage: Any) -> str:
    if isinstance(damage, list | tuple):
        return "; ".join(map(str, damage))
    return "" if damage is None else str(damage)


def _repairs_section(report: dict) -> str:
    rows = cube_repairs(report)
    if not rows:
        return ""
    counts = Counter(r["outcome"] for r in rows)
    head = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    table = _table(
        ["tile", "time step", "damage found", "outcome"],
        [[r["tile"], r["step"], r["damage"], r["outcome"]] for r in rows],
    )
    return f"<h2>Cube repairs</h2><p>{_text(head)}</p>{table}"


def _masked_section(masked: dict) -> str:
    if not any(masked.values()):
        return ""
    out = ["<h2>Masked fraction per date</h2>"]
    for tile, rows in sorted(masked.items()):
        if not rows:
            continue
        body = "".join(
            f"<tr><td>{_text(r['time'])}</td><td>{_text(r['platform'])}</td>"
            f'<td class="num">{float(r["masked_fraction"]):.3f}</td>'
            f'<td><span class="bar" style="width:{100 * float(r["masked_fraction"]):.0f}px"></span></td></tr>'
            for r in rows
        )
        mean = sum(float(r["masked_fraction"]) for r in rows) / len(rows)
        out.append(f"<h3>{_text(tile)}</h3>")
        out.append(
            _details(
                f"{len(rows)} date(s), mean masked fraction {mean:.3f}",
                f"<table><tr><th>time</th><th>platform</th><th>masked</th><th></th></tr>{body}</table>",
            )
        )
    return "".join(out)


def _products_section(products: dict) -> str:
    if not products:
        return ""
    rows = [
        [
            key,
            rec.get("status", ""),
            rec.get("steps", ""),
            rec.get("seconds", ""),
            rec.get("reason") or rec.get("update", ""),  # e.g. flood's reference drift
        ]
        for key, rec in sorted(products.items())
    ]
    return "<h2>Products</h2>" + _table(
        ["product/tile", "status", "time steps", "seconds", "reason"], rows, numeric={2, 3}
    )
