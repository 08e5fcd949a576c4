"""Paths tests share, independent of how deep a test module sits in the tree."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository checkout (holds `geoproc/`, `tests/`, `infra/`)."""
TEST_DATA = REPO_ROOT / "tests" / "data"
"""Fixtures copied into the repository (with their licences)."""
REALDATA = TEST_DATA / "realdata"
"""Real acquisitions (cropped or recompressed copies), one folder per case with LICENSE and README."""
