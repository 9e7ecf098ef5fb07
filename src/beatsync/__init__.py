"""beatsync: cut a music video on the beat.

The package root stays import-light on purpose: the submit/status functions import
``beatsync`` and must not pull numpy, librosa, madmom or av. Heavy libraries are imported
only inside :mod:`beatsync.analysis` and (later) :mod:`beatsync.render`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    from ._version import __version__  # written into function source archives
except ImportError:
    try:
        __version__ = version("beatsync")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        __version__ = "0.0.0+local"

__all__ = ["__version__"]
