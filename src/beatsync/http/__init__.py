"""The HTTP layer shared by the Cloud Functions (``functions/*/main.py``) and ``beatsync serve``.

Import-light: Flask/Werkzeug request objects in, JSON out; no numpy / librosa / av.
"""

from .app import GROUPS, create_flask_app, dispatch, get_container, set_container, set_container_factory

__all__ = ["GROUPS", "create_flask_app", "dispatch", "get_container", "set_container", "set_container_factory"]
