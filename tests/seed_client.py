"""The seed's client code, as the platform's apps and backends call the service: "Option 1: Direct HTTP
Calls" unchanged, and "Option 2" (service-to-service with Google ID tokens, Google's documented pattern).
Tests point it at a server by setting ``BEAT_SYNC_SERVICE_URL`` on this module."""

from __future__ import annotations

import os

import httpx

# ---- the seed's main-app client, "Option 1: Direct HTTP Calls", unchanged ----------------------------
BEAT_SYNC_SERVICE_URL = os.environ.get(
    "BEAT_SYNC_SERVICE_URL",
    "https://beat-sync-service-xxx.asia-southeast1.run.app"
)


async def create_beat_synced_video(
    audio_url: str,
    video_urls: list[str],
    config: dict = None,
) -> dict:
    """
    Create beat-synced video via Beat-Sync Service.
    """
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{BEAT_SYNC_SERVICE_URL}/api/v1/beat-sync/create",
            json={
                "audio_url": audio_url,
                "video_urls": video_urls,
                "config": config,
            },
            timeout=30.0,
        )
        response.raise_for_status()
        return response.json()


async def check_video_status(job_id: str) -> dict:
    """
    Check beat-sync job status.
    """
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{BEAT_SYNC_SERVICE_URL}/api/v1/beat-sync/create/{job_id}",
            timeout=10.0,
        )
        response.raise_for_status()
        return response.json()


# ---- "Option 2: service-to-service with Google ID tokens" (Google's documented pattern) ------------
import google.auth.transport.requests  # noqa: E402
import google.oauth2.id_token  # noqa: E402


async def call_beat_sync_service(method: str, endpoint: str, data: dict | None = None,
                                 headers: dict | None = None) -> dict:
    auth_req = google.auth.transport.requests.Request()
    id_token = google.oauth2.id_token.fetch_id_token(auth_req, BEAT_SYNC_SERVICE_URL)
    async with httpx.AsyncClient() as client:
        response = await client.request(
            method, f"{BEAT_SYNC_SERVICE_URL}{endpoint}", json=data,
            headers={"Authorization": f"Bearer {id_token}", **(headers or {})}, timeout=30.0)
        response.raise_for_status()
        return response.json()
