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
