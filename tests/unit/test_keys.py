"""The blob-key layout (beatsync/keys.py) agrees with itself: what a job writes is what the clean-up
and the retention sweep recognise."""

import pytest

from beatsync import keys

pytestmark = pytest.mark.unit

JOB = "0" * 32


def test_inputs_are_owned_by_their_job_and_uploads_by_none():
    audio, clips = keys.inputs(JOB, {"audio_url": "https://x/song.MP3?sig=1", "video_urls": ["https://x/a", "gs://b/c.mov"]})
    assert audio == f"inputs/audio/{JOB}/audio.mp3"
    assert clips == [f"inputs/video/{JOB}/clip_0.bin", f"inputs/video/{JOB}/clip_1.mov"]
    assert all(k.startswith(keys.input_prefixes(JOB)) and keys.input_owner(k) == JOB for k in [audio, *clips])
    upload = keys.upload("ab" * 32, "My Song.WAV")
    assert upload == f"inputs/uploads/{'ab' * 32}.wav" and keys.is_upload(upload) and keys.input_owner(upload) is None
    assert keys.inputs(JOB, {"audio_key": upload})[0] == upload


def test_outputs_temp_and_cache_keys():
    assert keys.result(JOB).startswith(keys.outputs(JOB)) and keys.result(JOB).endswith("/result.json")
    assert keys.beat_map(JOB) == f"outputs/{JOB}/beat_map.json"
    seg = keys.segment(JOB, 3, 1, "mp4")
    assert seg.startswith(keys.temp(JOB)) and seg.endswith("seg-003-001.mp4")
    assert keys.task_progress(JOB, 3, 2).startswith(keys.task_progress_prefix(JOB, 3))
    assert keys.is_cache(keys.cached_beat_map("h", "v")) and not keys.is_cache(keys.beat_map(JOB))
    assert keys.cached_clip_analysis("h", "v") == "cache/clip_analysis/h/v.json" and keys.is_cache("cache/clip_analysis/h/v.json")
    assert {k.split("/")[0] for k in (keys.result(JOB), keys.plan(JOB), keys.upload("d", "x"))} == set(keys.RETAINED)
