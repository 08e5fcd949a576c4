"""geoproc: satellite archives to flood extent, land surface temperature and tree canopy maps."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geoproc")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
