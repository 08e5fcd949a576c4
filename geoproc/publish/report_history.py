"""Every run report is kept: a copy per attempt and an index of them all.

Why: run ids are derived from the request (`pipeline.run_id_for`), so a rerun of the same
request writes ``runs/{run_id}/report.*`` again, and the report of the run that did the
work would be replaced by one that says every product was "skipped". Each attempt is
therefore also written, never to be overwritten, to
``runs/{run_id}/history/{UTC timestamp}/report.{json,html}``, and ``runs/index.json`` /
``runs/index.html`` list every attempt with its status and what it wrote.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

from geoproc import storage
from geoproc.run_report import is_relative

HISTORY = "history"
_UP = "../../"
"""From ``runs/{run_id}/history/{stamp}/`` back to ``runs/{run_id}/``."""


def archive_report(
    out: storage.Location, run_id: str, report: dict, *, render, now: datetime | None = None
) -> dict[str, str]:
    """Write this attempt's report under its own folder and add it to the run index.

    ``render`` turns a report into HTML (``run_report.render_html``); links in the copy are
    re-rooted so they still reach the viewer and catalog from the deeper folder (absolute
    ones, such as the Prefect flow run's page, are kept as they are).
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = out.join("runs", run_id, HISTORY, stamp)
    copy = dict(report)
    copy["links"] = {
        k: _UP + v if is_relative(v) else v for k, v in report.get("links", {}).items()
    }
    copy["attempt"] = stamp
    storage.write_bytes_atomic(
        folder.join("report.json"), json.dumps(copy, indent=2, sort_keys=True, default=str).encode()
    )
    storage.write_bytes_atomic(folder.join("report.html"), render(copy).encode())
    entries = _read_index(out)
    entries.append(_entry(run_id, stamp, report))
    entries.sort(key=lambda e: e["attempt"], reverse=True)
    storage.write_bytes_atomic(
        out.join("runs", "index.json"), json.dumps(entries, indent=1, sort_keys=True).encode()
    )
    storage.write_bytes_atomic(out.join("runs", "index.html"), render_index(entries).encode())
    return {"html": folder.join("report.html").url, "index": out.join("runs", "index.html").url}


def _entry(run_id: str, stamp: str, report: dict) -> dict:
    statuses = [str(r.get("status")) for r in report.get("products", {}).values()]
    cubes = report.get("cubes", {}).values()
    published = report.get("publish") or {}
    objects = published.get("objects", {}) if isinstance(published, dict) else {}
    return {
        "run_id": run_id,
        "attempt": stamp,
        "kind": report.get("kind", ""),
        "status": report.get("status", ""),
        "report": f"{run_id}/{HISTORY}/{stamp}/report.html",
        "steps_written": sum(len(c.get("steps_written", [])) for c in cubes),
        "products_written": statuses.count("written"),
        "products_skipped": statuses.count("skipped"),
        "products_failed": statuses.count("failed"),
        "files_published": int(objects.get("written", 0)),
        "seconds": round(sum(float(v) for v in report.get("timings_s", {}).values()), 1),
    }


def _read_index(out: storage.Location) -> list[dict]:
    try:
        entries = json.loads(storage.read_bytes(out.join("runs", "index.json")))
    except (FileNotFoundError, ValueError, OSError):
        return []
    return [e for e in entries if isinstance(e, dict) and "attempt" in e]


def render_index(entries: list[dict]) -> str:
    """The run index page: newest attempt first, one row per attempt."""
    head = (
        "<tr><th>attempt (UTC)</th><th>run id</th><th>kind</th><th>status</th>"
        "<th>cube steps written</th><th>products written / skipped / failed</th>"
        "<th>files published</th><th>seconds</th></tr>"
    )
    rows = []
    for e in entries:
        esc = {k: html.escape(str(v), quote=True) for k, v in e.items()}
        rows.append(
            f'<tr><td><a href="{esc["report"]}">{esc["attempt"]}</a></td><td>{esc["run_id"]}</td>'
            f'<td>{esc["kind"]}</td><td class="{esc["status"]}">{esc["status"]}</td>'
            f"<td>{esc['steps_written']}</td><td>{esc['products_written']} / "
            f"{esc['products_skipped']} / {esc['products_failed']}</td>"
            f"<td>{esc['files_published']}</td><td>{esc['seconds']}</td></tr>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>geoproc runs</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em}th{background:#f3f3f3}"
        ".failed,.partial{color:#b00020;font-weight:bold}</style></head><body>"
        f"<h1>geoproc runs</h1><table>{head}{''.join(rows)}</table></body></html>"
    )
