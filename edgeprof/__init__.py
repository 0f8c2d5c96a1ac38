"""edgeprof: what it costs, and what it leaks, to split a PyTorch model between a device and an edge server."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgeprof")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.2.0"
