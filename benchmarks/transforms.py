"""What a platform or a user does to media after it leaves facepair: rescale, crop, re-encode.
Shared by benchmarks/watermark.py and tests/test_watermark.py."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np


def rescale(rgb: np.ndarray, s: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2))   # even, for yuv420p
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def to_height(rgb: np.ndarray, height: int) -> np.ndarray:
    return rescale(rgb, height / rgb.shape[0])


def crop(rgb: np.ndarray, share: float) -> np.ndarray:
    """Cut `share` of the width and height from each side (even sizes)."""
    h, w = rgb.shape[:2]
    dy, dx = int(h * share), int(w * share)
    out = rgb[dy:h - dy, dx:w - dx]
    return np.ascontiguousarray(out[:out.shape[0] // 2 * 2, :out.shape[1] // 2 * 2])


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes()


# name -> per-frame change; each video is then re-encoded with H.264 at the CRF given
VIDEO = {
    "H.264 CRF 28": (lambda f: f, 28),
    "rescale 50 %": (lambda f: rescale(f, 0.5), 23),
    "360p": (lambda f: to_height(f, 360), 23),
    "crop 10 % each side": (lambda f: crop(f, 0.10), 23),
    "crop 5 % + rescale 75 %": (lambda f: rescale(crop(f, 0.05), 0.75), 23),
}
# name -> picture change, written as JPEG of that quality (None: PNG)
IMAGE = {
    "JPEG q75 at 50 %": (lambda f: rescale(f, 0.5), 75),
    "rescale 50 %": (lambda f: rescale(f, 0.5), None),
    "crop 10 % each side, JPEG q85": (lambda f: crop(f, 0.10), 85),
    "crop 5 % + rescale 75 %, JPEG q85": (lambda f: rescale(crop(f, 0.05), 0.75), 85),
}


def transcode(frames, dst: Path, change, crf: int, fps: int = 30) -> Path:
    """Write `change(frame)` for each RGB frame as H.264 (yuv420p, CRF `crf`), no metadata."""
    with av.open(str(dst), "w") as out:
        stream = None
        for f in frames:
            g = change(f)
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.height, stream.width = g.shape[:2]
                stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf), "preset": "veryfast"}
            for p in stream.encode(av.VideoFrame.from_ndarray(g, format="rgb24")):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return dst


def write_image(rgb: np.ndarray, dst: Path, quality: int | None) -> Path:
    """The picture as JPEG of `quality` (None: PNG), no metadata."""
    if quality is None:
        cv2.imwrite(str(dst.with_suffix(".png")), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return dst.with_suffix(".png")
    dst = dst.with_suffix(".jpg")
    dst.write_bytes(jpeg(rgb, quality))
    return dst


def flip(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


def at_most(rgb: np.ndarray, height: int) -> np.ndarray:
    """A platform's rendition of `height` lines: smaller pictures are left at their size."""
    return to_height(rgb, height) if rgb.shape[0] > height else rgb


def speed_up(frames: list, factor: float = 1.25) -> list:
    """The frames of a video played `factor` times faster at the same frame rate: the frame
    shown at each output time, the rest dropped (1 in 5 at 1.25x)."""
    return [frames[int(j * factor)] for j in range(int(len(frames) / factor))]


# issue 33's chains of platforms and re-uploads: name -> steps, each step (per-frame change, CRF)
# re-encoded with H.264 in turn; SPEED as a step's change: speed_up, no per-frame change
SPEED = "speed"
CHAINS = {
    "360p, CRF 32": [(lambda f: at_most(f, 360), 32)],
    "360p, CRF 36": [(lambda f: at_most(f, 360), 36)],
    "240p, CRF 28": [(lambda f: at_most(f, 240), 28)],
    "flip, CRF 23": [(flip, 23)],
    "flip + rescale 75 %, CRF 28": [(lambda f: rescale(flip(f), 0.75), 28)],
    "crop 20 % each side, CRF 23": [(lambda f: crop(f, 0.20), 23)],
    "speed-up 1.25x (frames dropped), CRF 28": [(SPEED, 28)],
    "2 re-uploads: 75 % CRF 28, 67 % CRF 30": [(lambda f: rescale(f, 0.75), 28), (lambda f: rescale(f, 0.67), 30)],
    "2 re-uploads: 60 % CRF 32, 80 % CRF 28": [(lambda f: rescale(f, 0.6), 32), (lambda f: rescale(f, 0.8), 28)],
    "3 re-uploads: 80 % CRF 28, 70 % CRF 30, 60 % CRF 32": [(lambda f: rescale(f, 0.8), 28),
                                                           (lambda f: rescale(f, 0.7), 30),
                                                           (lambda f: rescale(f, 0.6), 32)],
}
# a picture's chains (a photo, or a video's middle frame as a screenshot): steps of (change,
# JPEG quality or None for PNG), each written and read back in turn
PICTURE_CHAINS = {
    "screenshot at 1/3, JPEG q90": [(lambda f: rescale(f, 1 / 3), 90)],
    "screenshot at 1/3, PNG": [(lambda f: rescale(f, 1 / 3), None)],
    "flip, JPEG q85": [(flip, 85)],
    "crop 20 % each side, JPEG q85": [(lambda f: crop(f, 0.20), 85)],
    "2 re-saves: 75 % q85, 67 % q80": [(lambda f: rescale(f, 0.75), 85), (lambda f: rescale(f, 0.67), 80)],
}


def run_chain(frames: list, steps: list, tmp: Path, read) -> Path:
    """The video of `frames` through a chain's steps (CHAINS), each re-encoded in turn; `read`
    (path -> frames) decodes between steps. The last file's path."""
    for k, (change, crf) in enumerate(steps):
        if change == SPEED:
            frames, change = speed_up(frames), (lambda f: f)
        path = transcode(frames, tmp / f"chain{k}.mp4", change, crf)
        if k < len(steps) - 1:
            frames = read(path)
    return path


def run_picture_chain(rgb: np.ndarray, steps: list, tmp: Path) -> Path:
    """A picture through a chain's steps (PICTURE_CHAINS), each written and read back in turn."""
    for k, (change, quality) in enumerate(steps):
        path = write_image(change(rgb), tmp / f"pic{k}", quality)
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return path
