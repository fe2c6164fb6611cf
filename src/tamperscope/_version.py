"""The installed package version, in the bottom layer so custody and reports can stamp it without a cycle."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tamperscope")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+source"
