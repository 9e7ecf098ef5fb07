"""Adapters implementing :mod:`beatsync.ports` (local and Google Cloud)."""
