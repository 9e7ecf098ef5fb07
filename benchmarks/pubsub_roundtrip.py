"""Pub/Sub round trip on the emulator: publish a create request to the requests topic, the emulator
pushes it (through the test token relay, which adds the push account's OIDC token) to a running
`beatsync serve`, which makes the job; the job's events come back on its callback topic.

The job is one that fails at its media check (a corrupt clip), so the figures are the intake and
event path, not rendering. Prints, per message: publish -> push acknowledged (job stored),
publish -> "processing" event pulled, publish -> final ("failed") event pulled.

    python benchmarks/pubsub_roundtrip.py [--messages 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://asia-southeast1-demo-beatsync.cloudfunctions.net/beatsync-submit"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10)
    args = ap.parse_args()

    from google.auth import crypt, jwt

    from tests.emulators import start_pubsub_emulator, stop_process
    from tests.media import make_media
    from tests.pubsub import PUSH_PATH, PUSHER, Topology, dead_letter_topic, relay
    from tests.servers import Serve, Server, media_server, wait_for
    from tests.unit.test_auth_and_limits import _key_and_cert

    pem, cert = _key_and_cert()

    class Certs(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            body = json.dumps({"k1": cert}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def token():
        now = int(time.time())
        return jwt.encode(crypt.RSASigner.from_string(pem, "k1"), {
            "iss": "https://accounts.google.com", "aud": AUDIENCE, "email": PUSHER, "email_verified": True,
            "sub": "1", "iat": now - 5, "exp": now + 600}).decode()

    tmp = Path(tempfile.mkdtemp(prefix="beatsync-pubsub-"))
    (tmp / "media").mkdir()
    certs, media = Server(Certs), media_server(make_media(tmp / "media"))
    emulator = serve = r = t = None
    try:
        emulator, host = start_pubsub_emulator()
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        dead = dead_letter_topic()
        serve = Serve(tmp / "data", {
            "BEATSYNC_EVENT_PUBLISHER": "pubsub", "BEATSYNC_PROJECT": "demo-beatsync",
            "BEATSYNC_PUBSUB_PUSH_AUDIENCE": AUDIENCE, "BEATSYNC_PUBSUB_PUSH_SERVICE_ACCOUNT": PUSHER,
            "BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC": dead, "BEATSYNC_ID_TOKEN_CERTS_URL": certs.url + "/certs",
            "BEATSYNC_ALLOWED_HOSTS": media.host, "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": "10000",
            "BEATSYNC_MAX_ACTIVE_JOBS": "10000", "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": "10000", "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": "10000"})
        r = relay(serve.url + PUSH_PATH, token)
        t = Topology(r.url + PUSH_PATH, dead)
        rows = []
        for i in range(args.messages + 1):  # the first one warms the service up and is not counted
            body = {"audio_url": f"{media.url}/song.wav", "video_urls": [f"{media.url}/bad.mp4"],
                    "method": "librosa", "callback_topic": t.events}
            start = time.monotonic()
            message_id = t.publish(body)

            def acked():
                return next((d for d in r.deliveries if d["message"]["messageId"] == message_id
                             and d["answered"] == 200), None)

            delivery = wait_for(acked, timeout=60)
            events = {}
            deadline = time.monotonic() + 120
            while "beat_sync.job.failed" not in events and time.monotonic() < deadline:
                for at, m in t.pull(t.events_sub, 1, timeout=10):
                    events.setdefault(json.loads(m.data)["event"], at)
            if i:
                rows.append((delivery["received"] - start, delivery["time"] - delivery["received"],
                             delivery["time"] - start, events["beat_sync.job.processing"] - start,
                             events["beat_sync.job.failed"] - start))
    finally:
        for thing in (t, r, serve):
            if thing is not None:
                (thing.close if hasattr(thing, "close") else thing.stop)()
        certs.close()
        media.close()
        if emulator is not None:
            stop_process(emulator)

    print(f"Pub/Sub round trip on the emulator, {len(rows)} messages one after another (ms)")
    print(f"{'stage':<42} {'median':>8} {'p90':>8} {'max':>8}")
    stages = ("publish -> push arrives (emulator)", "push handled (token, verify, job stored)",
              "publish -> push acknowledged (job made)", "publish -> processing event pulled",
              "publish -> failed event pulled")
    for col, name in enumerate(stages):
        values = [row[col] * 1000 for row in rows]
        print(f"{name:<42} {statistics.median(values):8.0f} {_pct(values, 0.9):8.0f} {max(values):8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
