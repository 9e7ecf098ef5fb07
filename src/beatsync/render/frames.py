"""Reading clips as constant-rate output frames.

``ClipReader`` decodes one clip forward from the keyframe before an in-point and converts
the source frames it shows to the output size and pixel format with one FFmpeg filter graph
(display-matrix rotation, sample aspect ratio, scale + crop or scale + pad, limited range,
yuv420p): no per-pixel Python. Output frame ``k`` of a shot shows the latest source frame whose
timestamp is at or before ``source_in + k / fps``, which converts any frame rate, variable
ones included, by timestamps rather than by frame counts.
"""

from __future__ import annotations

import os
from fractions import Fraction

import av

from ..errors import MediaError
from ..media import decode_tolerant, is_cover_art
from .probe import ClipProbe

#: a forward jump longer than this seeks instead of decoding through the gap
SEEK_AHEAD = 2.0


def rotation_filters(rotation: int) -> list[tuple[str, str | None]]:
    """Filters that apply a display-matrix rotation (PyAV's ``frame.rotation``: degrees
    counter-clockwise), as FFmpeg's own autorotate does."""
    if rotation == 90:
        return [("transpose", "cclock")]
    if rotation == 270:
        return [("transpose", "clock")]
    if rotation == 180:
        return [("hflip", None), ("vflip", None)]
    return []


class FrameConverter:
    """Source frames -> output frames (size, fit, rotation, range, yuv420p) via a filter graph."""

    def __init__(self, probe: ClipProbe, width: int, height: int, fit: str):
        self.probe, self.width, self.height, self.fit = probe, width, height, fit
        self.graph = None
        self.key = None
        # smart: the crop window's start along the free axis, as a fraction of the slack (set per
        # frame from reframe.CropPlan; 0.5 = centre, as fill)
        self.crop_at: tuple[str, float] = ("x", 0.5)
        self._crop = None
        self._crop_applied: tuple[str, float] | None = None

    def _identity(self, frame: av.VideoFrame) -> bool:
        """Already the output picture: no rotation, square pixels, limited range, yuv420p, same size."""
        p = self.probe
        return (frame.width == self.width and frame.height == self.height and frame.format.name == "yuv420p"
                and p.rotation == 0 and (not p.sample_aspect_ratio or p.sample_aspect_ratio == 1) and not p.full_range)

    def _build(self, frame: av.VideoFrame) -> None:
        g = av.filter.Graph()
        src = g.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                           time_base=frame.time_base or Fraction(1, 1000))
        nodes = [src]
        sar = self.probe.sample_aspect_ratio
        if sar and sar != 1:
            nodes.append(g.add("scale", f"w=trunc(iw*{sar.numerator}/{sar.denominator}/2)*2:h=ih"))
        for name, args in rotation_filters(self.probe.rotation):
            nodes.append(g.add(name, args))
        in_range = ":in_range=full" if self.probe.full_range else ""
        mode = "decrease" if self.fit == "letterbox" else "increase"
        nodes.append(g.add("scale", f"w={self.width}:h={self.height}:force_original_aspect_ratio={mode}"
                                    f":force_divisible_by=2:flags=bicubic{in_range}:out_range=tv"))
        if self.fit == "smart":  # fill's scale, then a crop that moves (process_command per frame)
            self._crop = g.add("crop", f"{self.width}:{self.height}")
            self._crop_applied = None
            nodes.append(self._crop)
        elif self.fit == "fill":
            nodes.append(g.add("crop", f"{self.width}:{self.height}"))
        else:
            nodes.append(g.add("pad", f"{self.width}:{self.height}:(ow-iw)/2:(oh-ih)/2:black"))
        nodes.append(g.add("setsar", "1"))
        nodes.append(g.add("format", "yuv420p"))
        nodes.append(g.add("buffersink"))
        g.link_nodes(*nodes).configure()
        self.graph = g
        self.key = (frame.width, frame.height, frame.format.name)

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._identity(frame):
            return frame
        if self.graph is None or self.key != (frame.width, frame.height, frame.format.name):
            self._build(frame)
        if self._crop is not None and self.crop_at != self._crop_applied:
            axis, at = self.crop_at
            self._crop.process_command("x", f"(iw-ow)*{at if axis == 'x' else 0.5:.6f}")
            self._crop.process_command("y", f"(ih-oh)*{at if axis == 'y' else 0.5:.6f}")
            self._crop_applied = self.crop_at
        self.graph.vpush(frame)
        return self.graph.vpull()


class ClipReader:
    def __init__(self, probe: ClipProbe, width: int, height: int, fit: str):
        self.probe = probe
        self.name = os.path.basename(probe.path)
        try:
            self.container = av.open(probe.path, metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise MediaError(f"clip {self.name}: cannot be opened ({exc})", code="corrupt_media", source=self.name) from None
        self.stream = next(s for s in self.container.streams.video if not is_cover_art(s))
        # Frame threads hold several 1080p pictures each and buy nothing on a machine the encoder
        # already keeps busy; slice threads decode in place.
        self.stream.thread_type = "SLICE"
        tb = self.stream.time_base
        self.keyframes = sorted(float(e.timestamp * tb) - probe.start_time
                                for e in self.stream.index_entries if e.is_keyframe) if tb else []
        self.frame_period = 1.0 / probe.fps if probe.fps else 1 / 30
        self.convert = FrameConverter(probe, width, height, fit)
        self._frames = None
        self._current: tuple[float, av.VideoFrame] | None = None  # shown source frame (time, frame)
        self._next: tuple[float, av.VideoFrame] | None = None  # decoded, not yet shown
        self._converted: tuple[tuple[float, av.VideoFrame], av.VideoFrame] | None = None
        self._converted_at: tuple[str, float] | None = None  # the crop the cached frame was made with
        self.position = -1.0
        self.decoded_frames = 0
        self.clip = -1  # set by ReaderPool
        self.owner: int | None = None  # index of the shot this reader serves
        self.last_used = 0

    def close(self) -> None:
        # drop the decoded frames and the decoding generator with the container: they hold the
        # decoder's picture pool, which would otherwise live until the garbage collector finds the
        # reader (with more clips than max_open, closed readers piled up: +150 MB over 10 s at 1080p)
        if self._frames is not None:
            self._frames.close()
        self._frames = self._current = self._next = self._converted = None
        self.container.close()

    def _decode(self):
        tb = self.stream.time_base
        start = self.probe.start_time
        try:
            # a corrupt packet is skipped: the previous frame stays on screen
            for f in decode_tolerant(self.container, self.stream):
                if f.pts is None:
                    continue
                self.decoded_frames += 1
                yield float(f.pts * tb) - start, f
        except av.error.FFmpegError:
            return  # a truncated clip ends here: its last frame is held

    def _seek(self, t: float) -> None:
        tb = self.stream.time_base
        target = int((t + self.probe.start_time) / tb) if tb else 0
        try:
            self.container.seek(max(0, target), stream=self.stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            self.container.seek(0, stream=self.stream, backward=True)
        self._frames = self._decode()
        self._current = self._next = None

    def _keyframe_before(self, t: float) -> float | None:
        import bisect

        i = bisect.bisect_right(self.keyframes, t + 1e-6)
        return self.keyframes[i - 1] if i else None

    def frame_at(self, t: float) -> av.VideoFrame:
        """The converted output frame showing clip time ``t``."""
        if self._frames is None or t < self.position - 1e-6:
            self._seek(t)
        elif t - self.position > 2 * self.frame_period:
            # jump ahead: seek when the keyframe before t is nearer than our position (fewer frames
            # to decode through), else keep decoding forward
            kf = self._keyframe_before(t)
            if (kf is not None and kf > self.position + self.frame_period) or (kf is None and t - self.position > SEEK_AHEAD):
                self._seek(t)
        self.position = t
        # timestamps are rounded to the stream's time base (1 ms in Matroska/WebM): a frame stamped up
        # to one tick after t is the frame for t
        eps = max(1e-4, float(self.stream.time_base or 0))
        while True:
            if self._next is None:
                self._next = next(self._frames, None)
                if self._next is None:
                    break  # end of clip: hold the last frame
            if self._next[0] <= t + eps or self._current is None:
                self._current = self._next
                self._next = None
                if self._current[0] > t + eps:
                    break  # the first frame after a seek is later than t: show it
            else:
                break
        if self._current is None:
            raise MediaError(f"clip {self.name}: no decodable frame at {t:.2f} s", code="corrupt_media", source=self.name)
        # convert each shown source frame once (it repeats when the clip's rate is below the output's);
        # the cache holds the (time, frame) pair itself, so identity cannot be recycled.
        # A repeat is the same frame object, not a copy: avcodec_send_frame takes a reference to the
        # frame's buffers and the encoder copies the picture in; only pts and picture type are set on
        # the frame (per output frame, before each encode), and transitions and punches make new frames.
        if (self._converted is None or self._converted[0] is not self._current
                or self._converted_at != self.convert.crop_at):
            self._converted_at = self.convert.crop_at
            self._converted = (self._current, self.convert(self._current[1]))
        return self._converted[1]


class ReaderPool:
    """Open clip readers, shared by the shots.

    A shot keeps its reader while it plays (and while it plays on under the next shot's
    transition); a new shot reuses a reader of its clip that is just behind its in-point, else
    seeks a free one of that clip, else opens one (a second reader of a clip exists only while
    the previous shot, from the same clip, plays under a transition). At most ``max_open`` decoders are open (the least
    recently used is closed), so memory does not grow with the number of clips.
    """

    def __init__(self, probes: list[ClipProbe], width: int, height: int, fit: str, max_open: int = 6,
                 crops=None):
        self.probes, self.width, self.height, self.fit = probes, width, height, fit
        self.crops = crops  # fit smart: a reframe.CropPlan (the window per shot and time)
        self.max_open = max(2, max_open)
        self.readers: list[ClipReader] = []
        self.tick = 0
        self.closed_decoded = 0

    def frame(self, clip: int, t: float, owner: int) -> av.VideoFrame:
        self.tick += 1
        mine = [r for r in self.readers if r.clip == clip]
        reader = next((r for r in mine if r.owner == owner), None)
        if reader is None:
            free = [r for r in mine if r.owner != owner - 1]
            reader = next((r for r in free if r.position <= t + 1e-6 and t - r.position <= SEEK_AHEAD), None)
            if reader is None and free:  # seek a free reader rather than open another decoder
                reader = min(free, key=lambda r: r.last_used)
            if reader is None:
                reader = self._open(clip, owner)
            reader.owner = owner
        reader.last_used = self.tick
        if self.crops is not None:
            reader.convert.crop_at = self.crops.position(owner, t)
        return reader.frame_at(t)

    def _open(self, clip: int, owner: int) -> ClipReader:
        while len(self.readers) >= self.max_open:
            idle = [r for r in self.readers if r.owner not in (owner, owner - 1)]
            if not idle:
                break
            victim = min(idle, key=lambda r: r.last_used)
            self.closed_decoded += victim.decoded_frames
            victim.close()
            self.readers.remove(victim)
        reader = ClipReader(self.probes[clip], self.width, self.height, self.fit)
        reader.clip = clip
        self.readers.append(reader)
        return reader

    @property
    def decoded_frames(self) -> int:
        return self.closed_decoded + sum(r.decoded_frames for r in self.readers)

    def close(self) -> None:
        for r in self.readers:
            r.close()
