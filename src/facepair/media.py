"""Reading media: images (OpenCV) and videos (PyAV), as RGB uint8 frames; atomic file writes."""
from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

from .errors import FacepairError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class UnreadableMedia(Exception):
    """A file that is neither a decodable image nor a decodable video (skipped and counted)."""


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files and folders (recursive, sorted) -> files. A missing path is a user error."""
    files: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FacepairError(f"input not found: {p}")
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            files.append(p)
    return files


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise UnreadableMedia(f"cannot decode image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise FacepairError(f"cannot write image {path}")


def video_info(path: Path) -> dict:
    """Frame count, rate and size of a video's first video stream (raises UnreadableMedia)."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise UnreadableMedia(f"no video stream in {path}")
            s = c.streams.video[0]
            return {"frames": int(s.frames or 0), "fps": float(s.average_rate or 0),
                    "width": s.codec_context.width, "height": s.codec_context.height}
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise UnreadableMedia(f"cannot open video {path}: {e}") from None


def iter_video(path: Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, RGB frame) for every `every`-th frame. A stream that breaks part-way ends
    with a warning after the frames that decoded (a truncated file still gives what it has)."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise UnreadableMedia(f"cannot open video {path}: {e}") from None
    with container:
        if not container.streams.video:
            raise UnreadableMedia(f"no video stream in {path}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        i = -1
        try:
            for frame in container.decode(stream):
                i += 1
                if i % every == 0:
                    yield i, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            if i < 0:
                raise UnreadableMedia(f"cannot decode video {path}: {e}") from None
            warnings.warn(f"{path}: decoding stopped after frame {i} ({e}); kept what decoded")


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path):
    """A JSON file's content; a damaged file is a one-line user error."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FacepairError(f"corrupt {path}: {e}") from None


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())
