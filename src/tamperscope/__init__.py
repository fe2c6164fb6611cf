"""tamperscope: was this media manipulated, where, and how sure are we?

The front door is :func:`tamperscope.analyze`; the CLI (``tamperscope``) and the HTTP API wrap it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tamperscope")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+source"

from tamperscope.pipeline.front import AnalysisSummary, analyze

__all__ = ["AnalysisSummary", "__version__", "analyze"]
