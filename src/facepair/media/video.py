"""Videos (PyAV, which bundles FFmpeg): decoding frames as RGB uint8, their facts, a background
reader that overlaps decoding with the work on the frames, and re-encoding a video frame by frame
with its audio copied (VideoReader, VideoWriter)."""
from __future__ import annotations

import contextlib
import io
import queue
import threading
import time
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from ..errors import FacepairError, TooLarge, UnreadableMedia
from .image import MAX_PIXELS

# The demuxers a video is read with: the containers of camera, phone and web video. Left out are
# those that read other files or addresses named inside the file (HLS and DASH playlists, concat
# lists, image sequences, SDP): a playlist handed to swap, verify or the web app would otherwise
# pull in any video the user can read, outside the folder it was given in.
DEMUXERS = "mov,mp4,matroska,webm,avi,mpegts,flv,asf,mpeg,ogg"

# x264's settings (besides --crf): the `superfast` preset's motion search with `veryfast`'s
# macroblock tree over 10 frames ahead. Against `veryfast` (the previous versions') at the same
# CRF, measured by benchmarks/encoder.py on the 720p address: 0.68x to 0.77x the encoder's CPU
# time, 4 to 6 % larger files, 0.3 to 0.4 dB lower PSNR (48.6 dB at CRF 18). The encoder was
# the swap's largest stage (docs/results.md, "Swap speed on the Xeon, second pass").
X264 = {"preset": "superfast", "x264-params": "mbtree=1:rc-lookahead=10"}


# what a folder's files are taken as video by (a named file is tried whatever its name)
VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv",
              ".wmv", ".asf", ".mpg", ".mpeg", ".vob", ".3gp", ".3g2", ".f4v", ".qt", ".ogv"}


def is_video_name(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def open_input(path) -> av.container.InputContainer:
    """av.open for reading, with only the demuxers above (FFmpegError otherwise). Metadata that
    is not UTF-8 (a Latin-1 title in an old AVI or a camcorder's file) is read with its odd bytes
    replaced: PyAV refused the whole file for it."""
    return av.open(str(path), options={"format_whitelist": DEMUXERS}, metadata_errors="replace")


def main_video(container) -> av.video.stream.VideoStream | None:
    """The video stream to read: of those that are not a still (a cover picture, a stream of one
    frame), the one with the largest picture; the first of them on a tie (None: no video). The
    first video stream was read, so a one-frame picture muxed before a swap's own stream hid its
    watermark from verify, and swap and extract found no face in that picture."""
    still = av.stream.Disposition.attached_pic | av.stream.Disposition.still_image
    return max(container.streams.video, default=None,
               key=lambda s: (not s.disposition & still, s.frames != 1,
                              (s.codec_context.width or 0) * (s.codec_context.height or 0)))


def video_info(path: Path) -> dict:
    """Frame count, rate and size of a video's main video stream (raises UnreadableMedia)."""
    try:
        with open_input(path) as c:
            if not c.streams.video:
                raise UnreadableMedia(f"no video stream in {path}")
            s = main_video(c)
            return {"frames": int(s.frames or 0), "fps": float(s.average_rate or 0),
                    "width": s.codec_context.width, "height": s.codec_context.height}
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise UnreadableMedia(f"cannot open video {path}: {_why(e)}") from None


def _check_size(frame, path) -> None:
    """A frame larger than a picture may be (MAX_PIXELS) is refused before it becomes RGB: a
    small file can hold huge frames of one colour."""
    if frame.width * frame.height > MAX_PIXELS:
        raise TooLarge(f"video frames too large to read: {path} has {frame.width} x {frame.height} "
                       f"pixels (at most {MAX_PIXELS / 1e6:.0f} megapixels)")


def _why(e: Exception) -> str:
    """Why decoding stopped, in words: FFmpeg's reason without its error number and the path
    repeated ("[Errno 1094995529] Invalid data found when processing input: 'x.mp4'")."""
    if isinstance(e, av.error.FFmpegError):
        return e.strerror or str(e)
    return str(e) if isinstance(e, UnicodeDecodeError) else "a stream its header did not declare"


def quarter_turns(rotation: float) -> int:
    """A display matrix's counter-clockwise rotation in degrees -> quarter turns, 0 to 3 (a
    portrait phone clip is stored landscape with 90 or -90)."""
    return round((rotation or 0) / 90) % 4


def upright(picture: np.ndarray, turns: int) -> np.ndarray:
    """A decoded picture (H, W[, C]) turned as its display matrix says (`turns` counter-clockwise),
    contiguous: PyAV pads the rows of some widths (854 px), which dlib's face chips refuse."""
    return np.ascontiguousarray(np.rot90(picture, turns) if turns else picture)


class Fields:
    """Interlaced video (a 1080i camcorder clip, a broadcast, a DVD) made progressive as a player
    shows it: FFmpeg's yadif, one frame out per frame in, on the frames flagged interlaced, from
    the first such frame on (swapped as they were, its two fields 1/50 s apart showed combs on
    every moving edge, the new face and its detection included). Progressive video passes
    through untouched. Call with each batch of decoded frames, then flush() at the end."""

    def __init__(self, stream):
        self.stream, self.graph = stream, None

    def __call__(self, frames) -> list:
        out = []
        for frame in frames:
            if self.graph is None:
                if not frame.interlaced_frame:
                    out.append(frame)
                    continue
                self.graph = av.filter.Graph()
                source = self.graph.add_buffer(template=self.stream)
                yadif = self.graph.add("yadif", "mode=send_frame:parity=auto:deint=interlaced")
                source.link_to(yadif)
                yadif.link_to(self.graph.add("buffersink"))
                self.graph.configure()
            self.graph.push(frame)
            out += self._pull()
        return out

    def flush(self) -> list:
        """The frame the filter still holds (it reads one ahead)."""
        if self.graph is None:
            return []
        self.graph.push(None)
        return self._pull()

    def _pull(self) -> list:
        got = []
        while True:
            try:
                got.append(self.graph.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return got


def iter_video(path: Path, every: int = 1, only=None, stream: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, RGB frame, upright as displayed) for every `every`-th frame, or with `only`
    (a set of indices) for those frames alone, ending after the last (the others are decoded but
    not converted, which is most of a frame's cost). A stream that breaks part-way ends with a
    warning after the frames that decoded (a truncated file still gives what it has)."""
    try:
        container = open_input(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise UnreadableMedia(f"cannot open video {path}: {_why(e)}") from None
    with container:
        if not container.streams.video:
            raise UnreadableMedia(f"no video stream in {path}")
        stream = main_video(container) if stream is None else container.streams.video[stream]
        stream.thread_type = "AUTO"
        i, last = -1, max(only, default=-1) if only is not None else None
        fields, turns = Fields(stream), None

        def progressive():
            for frame in container.decode(stream):
                yield from fields([frame])
            yield from fields.flush()
        try:
            for frame in progressive():
                i += 1
                if last is not None and i > last:
                    break
                turns = quarter_turns(frame.rotation) if turns is None else turns   # the first frame's
                if i in only if only is not None else i % every == 0:
                    _check_size(frame, path)
                    yield i, upright(frame.to_ndarray(format="rgb24"), turns)
        except (av.error.FFmpegError, IndexError) as e:   # IndexError: PyAV meets a stream that
            if i < 0:                                    # appears part-way (damaged MPEG-TS)
                raise UnreadableMedia(f"cannot decode video {path}: {_why(e)}") from None
            warnings.warn(f"{path}: decoding stopped after frame {i} ({_why(e)}); kept what decoded")


def start_of(stream) -> float:
    """When a stream's first frame is shown, in seconds of its file's clock: 0 for most files,
    but a broadcast or camcorder MPEG-TS (.ts, .mts) or a clip cut out of one starts where its
    clock stood (1.4 s after FFmpeg's muxer, minutes into a recording)."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """The RGB frame shown at `seconds` (upright), or the last one when the video is shorter.
    Seeks to the keyframe before, then decodes forward."""
    try:
        with open_input(path) as container:
            if not container.streams.video:
                raise UnreadableMedia(f"no video stream in {path}")
            stream = main_video(container)
            seconds += start_of(stream)               # (seconds from the start, not the clock)
            if seconds > 0 and stream.time_base:
                container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
            last = None
            for frame in container.decode(stream):
                last = frame
                if frame.time is not None and frame.time + 0.5 / float(stream.average_rate or 30) >= seconds:
                    break
            if last is None:
                raise UnreadableMedia(f"no frame decoded from {path}")
            _check_size(last, path)
            fields = Fields(stream)          # one frame: its fields joined by space alone
            shown = (fields([last]) + fields.flush())[-1]
            return upright(shown.to_ndarray(format="rgb24"), quarter_turns(last.rotation))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise UnreadableMedia(f"cannot read video {path}: {e}") from None


def prefetch(it: Iterable, depth: int = 8) -> Iterator:
    """Run an iterator in a background thread (decoding overlaps detection: PyAV and OpenCV
    release the GIL). Exceptions are re-raised in the consumer."""
    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():          # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


class VideoReader:
    """A video file read for re-encoding: its first video stream decoded frame by frame, in
    display order, and every audio stream's packets untouched, in file order, up to `end`
    seconds (None: all). A damaged packet is skipped with a warning; a stream that breaks
    part-way ends with a warning after what decoded."""

    def __init__(self, path, end: float | None = None):
        self.path, self.end = Path(path), end
        try:
            self.container = open_input(path)
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise FacepairError(f"cannot open video {path}: {_why(e)}") from None
        if not self.container.streams.video:
            self.container.close()
            raise FacepairError(f"no video stream in {path}")
        self.video = main_video(self.container)
        self.video.thread_type = "AUTO"
        self.audio = list(self.container.streams.audio)
        # `end` counts from the first frame; the packets' times from the file's clock
        self.until = None if end is None else start_of(self.video) + end
        # the clock at the file's first packet: the writer starts its output there at 0 (an
        # MP4 that starts at 100 s opens on 100 s of nothing in a player)
        self.start = Fraction(max(self.container.start_time or 0, 0), av.time_base)
        self.fps = float(self.video.average_rate or 30)
        self.total = self.video.frames or None          # frames to expect (None: unknown)
        self.guessed = not self.total and bool(self.container.duration)
        if self.guessed:            # Matroska, WebM: no frame count, a duration (a cut file keeps it)
            self.total = round(self.container.duration / av.time_base * self.fps) or None
        if end is not None and self.total and end * self.fps < self.total:
            self.total = int(round(end * self.fps))
        self.frames = 0                                 # video frames given so far
        self.size, self.resized = None, False           # the first frame's size; said once
        self.fields = Fields(self.video)                # interlaced: made progressive
        self.turns = self._turns()                      # display rotation (portrait phone clips)

    def _turns(self) -> int:
        """The quarter turns of the first frame's display matrix (read ahead in a second open)."""
        with contextlib.suppress(av.error.FFmpegError, StopIteration), open_input(self.path) as c:
            return quarter_turns(next(c.decode(main_video(c))).rotation)
        return 0

    def picture(self, frame) -> np.ndarray:
        """A decoded frame as RGB, upright as displayed."""
        try:
            _check_size(frame, self.path)
        except UnreadableMedia as e:
            raise FacepairError(str(e)) from None
        size = (frame.width, frame.height)
        if self.size is None:
            self.size = size
        elif size != self.size and not self.resized:      # the encoder scales it to the first
            self.resized = True
            warnings.warn(f"{self.path}: the picture's size changes from {self.size[0]} x {self.size[1]} "
                          f"to {size[0]} x {size[1]} px at frame {self.frames}: the output keeps the "
                          "first size, those frames stretched to it")
        return upright(frame.to_ndarray(format="rgb24"), self.turns)

    def _wanted(self, frames, flush: bool = False):
        for f in self.fields.flush() if flush else self.fields(frames):
            if self.until is None or f.time is None or f.time < self.until:
                self.frames += 1
                yield "video", f

    def __iter__(self) -> Iterator[tuple[str, object]]:
        """("video", av.VideoFrame) and ("audio", av.Packet) items."""
        end, vin = self.until, self.video
        try:
            for packet in self.container.demux(vin, *self.audio):
                audio = packet.stream is not vin
                if end is not None and packet.pts is not None and packet.pts * packet.time_base >= end:
                    # decode order differs from display order: read on a little past the end
                    if not audio and packet.dts is not None and packet.dts * packet.time_base >= end + 1:
                        break
                    if audio:
                        continue
                if audio:
                    if packet.dts is not None:
                        yield "audio", packet
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    warnings.warn(f"{self.path}: skipped a damaged packet ({e})")
                    continue
                yield from self._wanted(frames)
            if end is not None:                           # frames still inside the decoder
                with contextlib.suppress(av.error.FFmpegError):
                    yield from self._wanted(vin.codec_context.decode(None))
            yield from self._wanted((), flush=True)      # (the filter reads one frame ahead)
        except (av.error.FFmpegError, IndexError) as e:   # IndexError: see iter_video
            warnings.warn(f"{self.path}: decoding stopped after frame {self.frames} ({_why(e)}); the "
                          "output holds what decoded")
        else:                                         # a file cut short ends without an error
            # (a duration read as frames: a margin for a longer sound track, a varying rate)
            short = self.total and self.frames < (0.9 * self.total - 2 if self.guessed else self.total)
            if end is None and short:
                said = f"about {self.total} its duration declares" if self.guessed else \
                    f"the {self.total} its header declares"
                warnings.warn(f"{self.path}: the video ends after frame {self.frames} of {said} "
                              "(truncated?); the output holds what decoded")

    def close(self):
        self.container.close()


FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}   # what swap writes


def _silence(like, samples: int):
    """`samples` of silence in the format, layout and rate of the audio frame `like`."""
    frame = av.AudioFrame(format=like.format.name, layout=like.layout.name, samples=samples)
    frame.sample_rate = like.sample_rate
    quiet = b"\x80" if like.format.name.startswith("u8") else b"\x00"     # unsigned: mid-scale
    for plane in frame.planes:
        plane.update(quiet * plane.buffer_size)
    return frame


def _fits(fmt: str, stream) -> bool:
    """Whether a container of format `fmt` takes `stream`'s codec as it is (tried in memory).
    PCM into MP4 does not: FFmpeg's muxer takes it, as 'ipcm' (ISO/IEC 23003-5, 2020), which
    browsers and QuickTime do not play (a camera's .MOV or .AVI with PCM sound swapped to .mp4)."""
    if fmt == "mp4" and stream.codec_context.name.startswith("pcm_"):
        return False
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as c:
            c.add_stream_from_template(stream)
            c.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def _turn_i420(buf: np.ndarray, turns: int) -> np.ndarray:
    """A yuv420p picture in its (H * 3/2, W) layout turned `turns` quarter turns, each plane alone
    (a half turn keeps the picture's height and width)."""
    h, w = buf.shape[0] * 2 // 3, buf.shape[1]
    flat = buf.reshape(-1)
    planes = [flat[:h * w].reshape(h, w), flat[h * w:h * w * 5 // 4].reshape(h // 2, w // 2),
              flat[h * w * 5 // 4:].reshape(h // 2, w // 2)]
    out_h, out_w = (h, w) if turns % 2 == 0 else (w, h)
    return np.concatenate([np.rot90(p, turns).ravel() for p in planes]).reshape(out_h * 3 // 2, out_w)


def _same_look(cin, cout) -> None:
    """The output's colour tags and pixel shape, so that players show it as they show the input.
    PyAV converts a frame tagged BT.709 (most phones' and cameras' HD) to RGB with the BT.709
    matrix and an untagged one with BT.601's; the writer converts back with BT.601's
    (watermark.embed_i420, and swscale's default for yuv444p). Untagged in, untagged out: the
    same numbers, which players read as they read the input's. Tagged in: the output says the
    matrix it was written with (BT.601, limited range) and keeps the input's primaries and
    transfer, where untagged it would be shown through another matrix than the one it was
    written with (in a player that assumes BT.709 for HD, by arithmetic: a skin tone of
    200, 150, 120 shown as 205, 153, 118; pure green's green channel 255 as 216).
    Anamorphic video (DVD, HDV: pixels not square) keeps its pixel shape."""
    unspecified = 2                                   # AVCOL_SPC/PRI/TRC_UNSPECIFIED
    if cin.colorspace != unspecified or cin.color_range:
        cout.colorspace = 6                           # AVCOL_SPC_SMPTE170M: BT.601's matrix
        cout.color_range = 1                          # AVCOL_RANGE_MPEG: 16 to 235
        cout.color_primaries, cout.color_trc = cin.color_primaries, cin.color_trc
    if cin.sample_aspect_ratio and cin.sample_aspect_ratio != 1:
        cout.sample_aspect_ratio = cin.sample_aspect_ratio


def even_sides(picture: np.ndarray) -> np.ndarray:
    """The picture with its last row and/or column repeated where that side is odd: H.264 in
    4:2:0, the form every player and phone decodes, needs even sides (as 4:4:4, the way an odd
    size could be kept, it does not play in Safari, on iOS or in most hardware decoders)."""
    h, w = picture.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return picture
    return np.pad(picture, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (picture.ndim - 2), mode="edge")


class VideoWriter:
    """H.264 video of a VideoReader's frames: the same size (a side of an odd number of pixels one
    longer: `even_sides`), pixel shape, colour tags, frame
    rate, timestamps (from 0 where the input's clock started later) and display rotation
    (yuv420p), every audio stream of the reader copied untouched
    but for that shift (one the container refuses, say PCM going into .mp4, is re-encoded as
    AAC, with a warning), and a comment in the container's metadata."""

    def __init__(self, path, reader: VideoReader, crf: int, comment: str = ""):
        fmt = FORMATS.get(Path(path).suffix.lower(), "mp4")
        self.container = av.open(str(path), "w", format=fmt)
        if comment:
            self.container.metadata["comment"] = comment
        vin = reader.video
        self.video = self.container.add_stream("libx264", rate=vin.average_rate or 30)
        w, h = vin.codec_context.width, vin.codec_context.height
        self.video.width, self.video.height = w + w % 2, h + h % 2      # (even_sides)
        self.video.pix_fmt = "yuv420p"
        _same_look(vin.codec_context, self.video.codec_context)
        # the encoder counts time in the input's units, not in frames of the average rate: a phone
        # clip's variable frame rate (frames 20 to 67 ms apart) otherwise rounds two frames onto
        # one tick, which x264 refuses ("Invalid argument", the swap lost)
        self.video.time_base = self.video.codec_context.time_base = vin.time_base
        self.last_pts: int | None = None              # the last frame's timestamp given to x264
        self.left_out: list[int] = []                 # frames (numbers, as written) that repeat
        self.written = 0                              # the last timestamp; frames given so far
        self.shift, self.jumps = 0, 0                 # after a jump back: ticks added, and how often
        self.tick = max(1, round(1 / (float(vin.time_base) * float(vin.average_rate or 30))))
        self.start = reader.start                     # (seconds) taken off every timestamp
        self.zero = round(self.start / vin.time_base) if vin.time_base else 0
        self.video.options = {"crf": str(crf), **X264}
        self.turns = reader.turns                     # pictures come upright: stored as the input
        if self.turns:
            self.video.set_display_rotation(90 * self.turns if self.turns < 3 else -90)
        self.audio = {}                               # input stream index -> (output stream, copy?)
        self.began = set()                            # re-encoded streams given their first frame
        for s in reader.audio:
            if _fits(fmt, s):
                self.audio[s.index] = (self.container.add_stream_from_template(s), True)
            else:
                warnings.warn(f"{reader.path}: audio stream {s.index} ({s.codec_context.name}) "
                              f"cannot go into {Path(path).suffix} as it is: re-encoded as AAC")
                out = self.container.add_stream("aac", rate=s.codec_context.sample_rate or 48000,
                                                layout=s.codec_context.layout.name or "stereo")
                self.audio[s.index] = (out, False)

    def write(self, picture: np.ndarray, like) -> None:
        """One frame at the timestamp of the decoded frame `like`: `picture` is upright (as the
        reader gave it, through `even_sides`), YUV 4:2:0 in yuv420p's (H * 3/2, W) layout."""
        if self.turns:
            picture = _turn_i420(picture, -self.turns)
        pts, last = None if like.pts is None else like.pts - self.zero + self.shift, self.last_pts
        number, self.written = self.written, self.written + 1
        if last is not None:
            if pts is None:                           # no timestamp: one tick after the last
                pts = last + 1
            elif pts == last:                         # shown at the same instant as the last: no
                self.left_out.append(number)          # player would show it; x264 refuses it
                return
            elif pts < last:
                # the clock jumped back (clips joined, an MPEG-TS discontinuity): what follows
                # comes one frame after the last, where it would otherwise all be left out
                self.shift += last + self.tick - pts
                self.jumps += 1
                pts = last + self.tick
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts, frame.time_base = pts, like.time_base
        self.last_pts = pts
        for packet in self.video.encode(frame):
            self.container.mux(packet)

    def copy(self, packet) -> None:
        """An audio packet of the reader: as it is, or re-encoded where the container refused it."""
        out, as_is = self.audio[packet.stream.index]
        if as_is:
            zero = round(self.start / packet.time_base)
            if packet.pts is not None:
                packet.pts -= zero
            packet.dts -= zero                        # (the reader passes none without a dts)
            packet.stream = out
            self.container.mux(packet)
            return
        for frame in packet.decode():
            if out not in self.began and frame.time is not None:
                # the encoder counts samples from 0: a track that starts after the file's first
                # packet would come early by as much (lips out of sync); silence fills the gap
                self.began.add(out)
                gap = round((frame.time - float(self.start)) * frame.sample_rate)
                if gap > 0:
                    for p in out.encode(_silence(frame, gap)):
                        self.container.mux(p)
            frame.pts = None
            for p in out.encode(frame):
                self.container.mux(p)

    def close(self) -> None:
        """Flush the encoders and finish the file (also after an interruption: it stays playable)."""
        for out in [self.video] + [o for o, as_is in self.audio.values() if not as_is]:
            for packet in out.encode():
                self.container.mux(packet)
        self.container.close()
        if self.left_out:
            warnings.warn(f"{len(self.left_out)} frame(s) left out: each repeats the timestamp of the "
                          "frame before (a damaged or oddly cut input)")
        if self.jumps:
            warnings.warn(f"the input's timestamps jumped back {self.jumps} time(s) (joined clips?): "
                          "the frames after each jump follow on one frame later")


class BackgroundWriter:
    """A VideoWriter fed from a thread of its own, so that preparing and encoding frames (x264,
    and whatever `prepare` does to each picture first) overlaps the work on the next ones: PyAV,
    x264 and OpenCV release the GIL. Frames and audio packets keep the order they were given in.
    A failure in the thread comes back as the exception itself at the next call, or at close."""

    def __init__(self, writer: VideoWriter, prepare=None, depth: int = 16):
        """`depth`: how many frames may wait. Audio packets, small, count only against a
        looser limit of 8 x depth items in all (with them counted as frames, the audio between
        frames filled the queue and held up the caller; unlimited, an audio track running on
        past the video queued whole at once)."""
        self.writer, self.prepare = writer, prepare or (lambda picture: picture)
        self.queue: queue.Queue = queue.Queue(8 * depth)
        self.room = threading.Semaphore(depth)        # frames that may still be queued
        self.error: BaseException | None = None
        self.busy = 0.0                               # seconds the thread spent working
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:                    # failed: drop the rest, keep draining
                t = time.perf_counter()
                try:
                    if item[0] == "frame":
                        self.writer.write(self.prepare(item[1]), like=item[2])
                    else:
                        self.writer.copy(item[1])
                except BaseException as e:  # noqa: BLE001 - handed back to the caller
                    self.error = e
                self.busy += time.perf_counter() - t
            if item[0] == "frame":
                self.room.release()

    def _put(self, item):
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def write(self, picture: np.ndarray, like) -> None:
        if self.error is not None:
            raise self.error
        self.room.acquire()
        self._put(("frame", picture, like))

    def copy(self, packet) -> None:
        self._put(("audio", packet))

    def close(self) -> None:
        """Write what is queued, then finish the file (VideoWriter.close)."""
        self.queue.put(None)
        self.thread.join()
        t = time.perf_counter()
        self.writer.close()
        self.busy += time.perf_counter() - t
        if self.error is not None:
            raise self.error

