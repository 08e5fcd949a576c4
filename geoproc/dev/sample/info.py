"""Summarise an existing sample archive: items per collection, dates, granules, completeness."""

from __future__ import annotations

import json
from pathlib import Path

from geoproc.errors import UsageError


def archive_info(archive_dir: str | Path) -> dict:
    """Counts per collection and date range, read from the item files (no rasters opened)."""
    root = Path(archive_dir)
    items_dir = root / "items"
    if not items_dir.is_dir():
        raise UsageError(
            f"{root} is not a sample archive (no items/ folder): pass the folder made by "
            "`geoproc sample create --out DIR`."
        )
    collections: dict[str, dict] = {}
    for coll_dir in sorted(p for p in items_dir.iterdir() if p.is_dir()):
        dates, granules = [], set()
        for path in sorted(coll_dir.glob("*.json")):
            item = json.loads(path.read_text())
            dates.append(item["properties"]["datetime"][:10])
            zone = item["properties"].get("mgrs:utm_zone")
            band = item["properties"].get("mgrs:latitude_band", "")
            square = item["properties"].get("mgrs:grid_square", "")
            granules.add(f"{zone}{band}{square}")
        collections[coll_dir.name] = {
            "items": len(dates),
            "dates": len(set(dates)),
            "first": min(dates) if dates else None,
            "last": max(dates) if dates else None,
            "granules": sorted(granules),
        }
    marker = root / ".complete.json"
    return {
        "archive": str(root),
        "complete": marker.is_file(),
        "generator": json.loads(marker.read_text()) if marker.is_file() else None,
        "collections": collections,
    }


def format_info(info: dict) -> str:
    lines = [f"archive  {info['archive']}  ({'complete' if info['complete'] else 'INCOMPLETE'})"]
    if info["generator"]:
        g = info["generator"]
        lines.append(f"seed {g['seed']}, size {g['size']}, generator version {g['version']}")
    lines.append(
        f"{'collection':<16} {'items':>6} {'dates':>6}  {'first':<10}  {'last':<10}  granules"
    )
    for name, c in info["collections"].items():
        lines.append(
            f"{name:<16} {c['items']:>6} {c['dates']:>6}  {c['first'] or '-':<10}  {c['last'] or '-':<10}  "
            + ", ".join(c["granules"])
        )
    return "\n".join(lines)
