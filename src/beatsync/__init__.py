"""beatsync: cut a music video on the beat.

The package root stays import-light on purpose: the submit/status functions import
``beatsync`` and must not pull numpy, librosa, madmom or av. Heavy libraries are imported
only inside :mod:`beatsync.analysis` and (later) :mod:`beatsync.render`. ``__version__`` is
looked up on first use (importlib.metadata takes a tenth of a second: the CLI's start-up).
"""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'beatsync' has no attribute {name!r}")
    try:
        from ._version import __version__ as found  # written into function source archives
    except ImportError:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("beatsync")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found = "0.0.0+local"
    globals()["__version__"] = found
    return found
