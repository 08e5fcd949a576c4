"""Writing an extracted table: CSV or Parquet, whole or not at all.

The table is built in memory and written in one atomic put (temporary name + rename on
disk, one PUT on S3), so a failed or killed extraction leaves no half file behind. Time
is written as ISO-8601 UTC text in CSV (spreadsheets parse it) and as a timestamp in
Parquet; masked values are empty in CSV and null in Parquet, never a fill number.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import pandas as pd

from geoproc import storage
from geoproc.errors import UsageError

FORMATS = (".csv", ".parquet")


def output_format(out: str) -> str:
    """``csv`` or ``parquet`` from --out's suffix; checked before any store is read."""
    suffix = PurePosixPath(str(out)).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"--out {out}: end the name with .csv or .parquet.")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(
                f"--out {out}: Parquet output needs pyarrow, which is not installed; install "
                "it (pip install pyarrow) or write --out FILE.csv."
            ) from None
    storage.parse_url(out, argument="--out")
    return suffix[1:]


def write_table(table: pd.DataFrame, out: str) -> None:
    """Write the table atomically in the format --out names."""
    fmt = output_format(out)
    if fmt == "csv":
        frame = table.copy()
        if "time" in frame and pd.api.types.is_datetime64_any_dtype(frame["time"]):
            frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        data = frame.to_csv(index=False, na_rep="", lineterminator="\n").encode()
    else:
        buf = io.BytesIO()
        table.to_parquet(buf, index=False, engine="pyarrow")
        data = buf.getvalue()
    storage.write_bytes_atomic(storage.parse_url(out, argument="--out"), data)
