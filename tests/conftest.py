from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

def _find_shared() -> Path:
    """The team's shared media: $BEATSYNC_SHARED_DATA, else ../shared/data beside the checkout,
    else the workspace's /work/shared/data (where CI clones elsewhere)."""
    if os.environ.get("BEATSYNC_SHARED_DATA"):
        return Path(os.environ["BEATSYNC_SHARED_DATA"])
    for candidate in (ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if (candidate / "beats" / "audio").is_dir():
            return candidate
    return ROOT.parent / "shared" / "data"


SHARED = _find_shared()

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config, items):
    """The folder a test lives in is its tier (tests/unit, tests/integration, tests/e2e)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        tier = parts[0] if parts and parts[0] in TIERS else "unit"
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "beats" / "audio").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set BEATSYNC_SHARED_DATA)")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test writes its beat-map cache into a temporary folder, never the user's; the
    numba JIT cache stays shared (it only holds compiled kernels)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "beatsync" / "numba"))
    monkeypatch.setenv("BEATSYNC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A loopback media host serving small synthetic media (song.wav, a.mp4, b.mp4, bad.mp4)."""
    from tests.media import make_media
    from tests.servers import media_server

    root = make_media(tmp_path_factory.mktemp("media"))
    server = media_server(root)
    server.root = root
    yield server
    server.close()


@pytest.fixture
def receiver():
    """A webhook receiver on loopback that records what it gets."""
    from tests.servers import webhook_receiver

    r = webhook_receiver()
    yield r
    r.close()
