"""Render speed: the same 30 s, 1080p30 edit (a cut every 0.5 s over real footage) by
beatsync, by moviepy 2.x, by one ffmpeg filter_complex command, the x264 ceiling (encoding frames already
decoded, in RAM) and decode+encode (the shots' source frames decoded and encoded, no audio: the least any
frame-exact renderer of these sources does; ``--tools beatsync,ceiling,decode+encode``).

    python benchmarks/render_speed.py [--repeat 3] [--seconds 30]

Sources: the shared Intel clips upscaled once to 1920x1080 H.264 (cached under
~/.cache/beatsync/bench). Every tool renders the same shots with libx264 preset veryfast,
CRF 23, AAC audio from the same song window. Runs are interleaved; each is a fresh process
whose process tree is sampled for peak RSS. Prints medians: wall s, CPU s, peak RSS, and
realtime factor (output seconds per wall second). Also the peak RSS of beatsync for a 4x
longer edit, to show memory stays flat.

    nice -n 10 python benchmarks/render_speed.py --max-size [--seconds 3]

The worst case the service accepts, for memory: sources at the clip limit (4096x2304), output at the
largest size of the output-size rule in both orientations (4096x2160, 2160x4096), 60 fps, 0.5 s
crossfades at every cut; prints wall s and the peak RSS of the render process tree (one job).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BEATSYNC_SHARED_DATA") or ROOT.parent / "shared" / "data")
CACHE = Path(os.environ.get("BEATSYNC_CACHE_DIR", Path.home() / ".cache" / "beatsync")) / "bench"
SOURCES = ["intel_bottle-detection.mp4", "intel_car-detection.mp4", "intel_one-by-one-person-detection.mp4",
           "intel_asl_again.mkv"]
SONG = SHARED / "music" / "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"
FPS, W, H, SHOT = 30, 1920, 1080, 0.5
PRESET, CRF = "veryfast", 23


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def prepare_sources() -> list[Path]:
    """1080p30 H.264 versions of the shared clips (upscaled, looped to >= 40 s)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for name in SOURCES:
        dst = CACHE / (Path(name).stem + "_1080p.mp4")
        if not dst.exists():
            subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(SHARED / "video" / name),
                            "-t", "40", "-vf", f"scale={W}:{H}:force_original_aspect_ratio=increase,crop={W}:{H},fps={FPS},format=yuv420p",
                            "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-g", "60", str(dst)], check=True)
        out.append(dst)
    return out


def shots(seconds: float, clip_duration: float = 40.0) -> list[dict]:
    """A cut every 0.5 s; clips in turn, in-points jumping forward through each clip."""
    n = int(seconds / SHOT)
    frames = int(SHOT * FPS)
    out = []
    for i in range(n):
        clip = i % len(SOURCES)
        source_in = ((i // len(SOURCES)) * 1.7) % (clip_duration - 2)
        out.append({"clip": clip, "source_in": round(source_in, 3), "start": i * frames, "end": (i + 1) * frames})
    return out


def cut_edit(sources: list[str], shot_specs: list[dict], seconds: float):
    """``(edl, probes)``: the 1080p30 mp4 edit of hard cuts over ``sources`` that the render
    benchmarks (parallel_render.py, render_memory.py) render, from :func:`shots`' dicts."""
    from beatsync.contracts import ClipRef, EditDecisionList, Shot, SongWindow, Transition
    from beatsync.render.probe import probe_clip

    probes = [probe_clip(p) for p in sources]
    cuts = [Shot(index=i, clip=s["clip"], source_in=s["source_in"], start_frame=s["start"], end_frame=s["end"],
                 transition=Transition(style="cut", duration=0), section="verse", motion=0.5)
            for i, s in enumerate(shot_specs)]
    edl = EditDecisionList(fps=FPS, width=W, height=H, fit="fill", output_format="mp4",
                           song=SongWindow(start=0.0, end=seconds, audio_hash="-"), total_frames=shot_specs[-1]["end"],
                           clips=[ClipRef(index=i, name=p.path, duration=p.duration) for i, p in enumerate(probes)],
                           shots=cuts)
    return edl, probes


# -- the four renderers, each run as a fresh process -------------------------------------------------

BEATSYNC = r"""
import json, sys
from beatsync.contracts import EditDecisionList, Shot, Transition, SongWindow, ClipRef
from beatsync.render.encode import render
from beatsync.render.probe import probe_clip
spec = json.loads(sys.argv[1])
probes = [probe_clip(p) for p in spec["sources"]]
fade = spec["fade"]
shots = [Shot(index=i, clip=s["clip"], source_in=s["source_in"], start_frame=s["start"], end_frame=s["end"],
              transition=Transition(style="fade" if fade and i else "cut", duration=fade if i else 0),
              section="verse", motion=0.5) for i, s in enumerate(spec["shots"])]
edl = EditDecisionList(fps=spec.get("fps", 30), width=spec.get("width", 1920), height=spec.get("height", 1080),
                       fit="fill", output_format="mp4",
                       song=SongWindow(start=spec["song_start"], end=spec["song_start"] + spec["seconds"], audio_hash="-"),
                       total_frames=spec["shots"][-1]["end"],
                       clips=[ClipRef(index=i, name=p.path, duration=p.duration) for i, p in enumerate(probes)], shots=shots)
render(edl, probes, spec["song"], spec["out"], preset="veryfast", crf=23)
"""

MOVIEPY = r"""
import json, sys
from moviepy import VideoFileClip, AudioFileClip, concatenate_videoclips, vfx
spec = json.loads(sys.argv[1])
sources = [VideoFileClip(p, audio=False) for p in spec["sources"]]
fade = spec["fade"]
parts = []
for i, s in enumerate(spec["shots"]):
    dur = (s["end"] - s["start"]) / 30 + (fade if fade and i + 1 < len(spec["shots"]) else 0)
    part = sources[s["clip"]].subclipped(s["source_in"], s["source_in"] + dur)
    if fade and i:
        part = part.with_effects([vfx.CrossFadeIn(fade)])
    parts.append(part)
video = concatenate_videoclips(parts, method="compose", padding=-fade if fade else 0)
audio = AudioFileClip(spec["song"]).subclipped(spec["song_start"], spec["song_start"] + spec["seconds"])
video = video.with_audio(audio).with_duration(spec["seconds"])
video.write_videofile(spec["out"], fps=30, codec="libx264", audio_codec="aac", preset="veryfast",
                      ffmpeg_params=["-crf", "23"], logger=None)
"""


def ffmpeg_cmd(spec: dict) -> list[str]:
    cmd = [ffmpeg_exe(), "-v", "error", "-y"]
    fade = spec["fade"]
    n = len(spec["shots"])
    for i, s in enumerate(spec["shots"]):
        dur = (s["end"] - s["start"]) / FPS + (fade if fade and i + 1 < n else 0)
        cmd += ["-ss", str(s["source_in"]), "-t", f"{dur:.4f}", "-i", spec["sources"][s["clip"]]]
    cmd += ["-ss", str(spec["song_start"]), "-t", str(spec["seconds"]), "-i", spec["song"]]
    parts = [f"[{i}:v]settb=AVTB,setpts=PTS-STARTPTS,fps={FPS}[v{i}]" for i in range(n)]
    if not fade:
        graph = ";".join(parts) + ";" + "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[out]"
    else:
        chain, last, offset = [], "v0", 0.0
        for i in range(1, n):
            offset += (spec["shots"][i - 1]["end"] - spec["shots"][i - 1]["start"]) / FPS
            chain.append(f"[{last}][v{i}]xfade=transition=fade:duration={fade}:offset={offset:.4f}[x{i}]")
            last = f"x{i}"
        graph = ";".join(parts + chain) + f";[{last}]null[out]"
    cmd += ["-filter_complex", graph, "-map", "[out]", "-map", f"{n}:a", "-c:v", "libx264", "-preset", PRESET,
            "-crf", str(CRF), "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(spec["seconds"]), spec["out"]]
    return cmd


CEILING = r"""
import json, sys, time, resource
from fractions import Fraction
import av
spec = json.loads(sys.argv[1])
with av.open(spec["reference"]) as c:
    frames = [f.reformat(format="yuv420p") for f in c.decode(c.streams.video[0])]
t0 = time.perf_counter(); c0 = time.process_time()
with av.open(spec["out"], "w") as out:
    v = out.add_stream("libx264", rate=30, options={"crf": "23", "preset": "veryfast"})
    v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
    v.thread_type = "FRAME"
    for i, f in enumerate(frames):
        f.pts = i; f.time_base = Fraction(1, 30); f.pict_type = av.video.frame.PictureType.NONE
        for p in v.encode(f):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "frames": len(frames)}))
"""


# The floor of any frame-exact cut renderer of these sources: each shot's source frames decoded (from the
# keyframe before its in-point, slice threads as beatsync's readers) and encoded at the same settings as the
# ceiling; no audio, no conversion (the sources are already 1080p yuv420p). Only the loop counts.
DECODE_ENCODE = r"""
import json, sys, time
from fractions import Fraction
import av
spec = json.loads(sys.argv[1])
t0 = time.perf_counter(); c0 = time.process_time()
sources = [av.open(p) for p in spec["sources"]]
for c in sources:
    c.streams.video[0].thread_type = "SLICE"
with av.open(spec["out"], "w") as out:
    v = out.add_stream("libx264", rate=30, options={"crf": "23", "preset": "veryfast"})
    v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
    v.thread_type = "FRAME"
    n = 0
    for s in spec["shots"]:
        c = sources[s["clip"]]
        st = c.streams.video[0]
        c.seek(int(s["source_in"] / st.time_base), stream=st, backward=True)
        want = s["end"] - s["start"]
        for f in c.decode(st):
            if f.time < s["source_in"] - 1e-3:
                continue
            f.pts = n; f.time_base = Fraction(1, 30); f.pict_type = av.video.frame.PictureType.NONE
            for p in v.encode(f):
                out.mux(p)
            n += 1; want -= 1
            if want == 0:
                break
    for p in v.encode(None):
        out.mux(p)
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "frames": n}))
"""


def measure(cmd: list[str]) -> dict:
    import psutil

    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, cpu = 0, {}
    while proc.poll() is None:
        try:
            tree = [proc] + proc.children(recursive=True)
            rss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system + getattr(t, "children_user", 0) + getattr(t, "children_system", 0)
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, rss)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {err.decode()[-2000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()), "rss": peak, "stdout": out.decode()}


def max_size(seconds: float) -> int:
    """Peak RSS of the largest accepted render (see the module docstring)."""
    sw, sh, fps, fade = 4096, 2304, 60, 0.5
    CACHE.mkdir(parents=True, exist_ok=True)
    sources = []
    for name in SOURCES[:2]:
        dst = CACHE / (Path(name).stem + f"_{sw}x{sh}.mp4")
        if not dst.exists():
            subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(SHARED / "video" / name),
                            "-t", "8", "-vf", f"scale={sw}:{sh},fps=30,format=yuv420p", "-an", "-c:v", "libx264",
                            "-preset", "ultrafast", "-crf", "28", "-g", "30", str(dst)], check=True)
        sources.append(str(dst))
    sources = sources * 2  # shots() takes the 4 sources in turn
    print(f"| output | sources | fps | edit | wall s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in ((4096, 2160), (2160, 4096)):
            cuts = [dict(s, start=s["start"] * fps // FPS, end=s["end"] * fps // FPS) for s in shots(seconds, 6.0)]
            spec = {"sources": sources, "shots": cuts, "fade": fade, "song": str(SONG), "song_start": 20.0,
                    "seconds": seconds, "out": os.path.join(tmp, f"{w}x{h}.mp4"), "width": w, "height": h,
                    "fps": fps}
            r = measure([sys.executable, "-c", BEATSYNC, json.dumps(spec)])
            print(f"| {w}x{h} | {sw}x{sh} | {fps} | {seconds:.0f} s, {fade} s crossfade every {SHOT} s | "
                  f"{r['wall']:.1f} | {r['rss'] / 1e6:.0f} |", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--tools", default="beatsync,ffmpeg,moviepy,ceiling")
    ap.add_argument("--no-flat", action="store_true", help="skip the long-edit memory run")
    ap.add_argument("--max-size", action="store_true", help="only the largest accepted render, for memory")
    args = ap.parse_args(argv)
    if args.max_size:
        return max_size(args.seconds)
    sources = [str(p) for p in prepare_sources()]
    tools = args.tools.split(",")
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for fade in (0.0, 0.1):
                variant = "hard cuts" if not fade else "0.1 s crossfades"
                for tool in tools:
                    if tool in ("ceiling", "decode+encode") and fade:
                        continue
                    out = os.path.join(tmp, f"{tool}_{int(fade * 10)}.mp4")
                    spec = {"sources": sources, "shots": shots(args.seconds), "fade": fade, "song": str(SONG),
                            "song_start": 20.0, "seconds": args.seconds, "out": out,
                            "reference": os.path.join(tmp, "beatsync_0.mp4")}
                    if tool == "beatsync":
                        cmd = [sys.executable, "-c", BEATSYNC, json.dumps(spec)]
                    elif tool == "moviepy":
                        cmd = [sys.executable, "-c", MOVIEPY, json.dumps(spec)]
                    elif tool == "ffmpeg":
                        cmd = ffmpeg_cmd(spec)
                    elif tool == "decode+encode":
                        cmd = [sys.executable, "-c", DECODE_ENCODE, json.dumps(spec)]
                    else:
                        cmd = [sys.executable, "-c", CEILING, json.dumps(spec)]
                    r = measure(cmd)
                    if tool in ("ceiling", "decode+encode"):  # only the loop counts
                        inner = json.loads(r["stdout"].strip().splitlines()[-1])
                        r["wall"], r["cpu"] = inner["wall"], inner["cpu"]
                    results.setdefault((tool, variant), []).append(r)
                    print(f"  run {rep + 1}: {tool:8} {variant:16} {r['wall']:6.1f} s", file=sys.stderr)
        flat = None
        if not args.no_flat and "beatsync" in tools:
            long_spec = {"sources": sources, "shots": shots(args.seconds * 4), "fade": 0.0, "song": str(SONG),
                         "song_start": 0.0, "seconds": args.seconds * 4, "out": os.path.join(tmp, "long.mp4")}
            flat = measure([sys.executable, "-c", BEATSYNC, json.dumps(long_spec)])
    print(f"\n{args.seconds:.0f} s of {W}x{H}@{FPS} output, a cut every {SHOT} s, x264 {PRESET} CRF {CRF}; "
          f"medians of {args.repeat}\n")
    print("| tool | edit | wall s | CPU s | peak RSS MB | realtime factor |")
    print("|---|---|---|---|---|---|")
    for (tool, variant), rs in results.items():
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        rss = statistics.median(r["rss"] for r in rs) / 1e6
        rss_s = f"{rss:.0f}" if tool != "ceiling" else "(frames in RAM)"
        print(f"| {tool} | {variant} | {wall:.1f} | {cpu:.1f} | {rss_s} | {args.seconds / wall:.2f}x |")
    cpu_of = {t: statistics.median(r["cpu"] for r in rs) for (t, v), rs in results.items() if v == "hard cuts"}
    if "beatsync" in cpu_of:
        for floor, what in (("ceiling", "the x264 ceiling (frames already decoded, in RAM)"),
                            ("decode+encode", "decoding the shots' source frames and encoding them (no audio)")):
            if floor in cpu_of:
                print(f"\nbeatsync's CPU s / {what}: {cpu_of['beatsync'] / cpu_of[floor]:.2f}x")
    if flat is not None:
        short = statistics.median(r["rss"] for r in results[("beatsync", "hard cuts")]) / 1e6
        print(f"\nbeatsync peak RSS: {short:.0f} MB for {args.seconds:.0f} s, {flat['rss'] / 1e6:.0f} MB for "
              f"{args.seconds * 4:.0f} s (wall {flat['wall']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
