"""Temporal stability: centred landmark smoothing over a stream of frames, and a scene-cut test.

A face's landmarks shake a little from frame to frame (the detector and the landmark predictor
are per-frame). A causal filter (One-Euro, the previous version's) can only steady them by
lagging them: the face is pasted where the head was a few frames ago. A file is not live, so
`Lookahead` holds each frame until the few frames after it are known and fits a straight line
through the face's landmarks on both sides: steady motion passes without lag, shaking is averaged
out. On the sample clips other than obama_clip2, at sigma 0.05 s (1.5 frames at 30 fps) it leaves
the landmarks steadier than One-Euro did (jitter 0.20 of the raw landmarks' against 0.26) while
moving them 2.6x less far from where they were found (0.011 of the inter-ocular distance against
0.029); `benchmarks/smoothing.py` measures this, and docs/results.md the swaps.
"""
from __future__ import annotations

import math
from collections import deque

import cv2
import numpy as np

MAX_FPS = 240               # the fastest rate smoothed by time (slow motion above: by frames)
SIGMA_SECONDS = 0.05        # the smoothing's width (benchmarks/smoothing.py chose it on clips
                            # other than obama_clip2, where the swaps are judged)


def line_fit(times, values, t: float, sigma: float) -> np.ndarray:
    """The value at time t of a straight line fitted to (times, values) by least squares with
    Gaussian weights of width sigma around t. With times evenly either side of t this is their
    weighted mean (no lag on steady motion); at a track's ends, where one side is missing, the
    line's own value (still no lag). values: [n, ...]; a single time gives its value."""
    u = np.asarray(times, np.float64) - t
    v = np.asarray(values, np.float64)
    w = np.exp(-0.5 * (u / sigma) ** 2)
    s0, s1, s2 = w.sum(), (w * u).sum(), (w * u * u).sum()
    m0 = np.tensordot(w, v, 1)
    det = s0 * s2 - s1 * s1
    if det <= 1e-9 * s0 * s2:                      # one time only: no line
        return m0 / s0
    return (s2 * m0 - s1 * np.tensordot(w * u, v, 1)) / det


class Lookahead:
    """Centred smoothing of the faces of a stream of video frames. `push` a frame's number, a
    payload and its faces [(track key, landmarks)]; it gives back, in order, the frames whose
    `half` following frames are now known, each face with [(smoothed, found)] landmarks: the
    line fit over its own track's landmarks within `half` frames either side (a track never spans
    a scene cut or another face). `flush` gives the frames still held (end of video, or a stop).
    sigma 0: no smoothing, nothing held."""

    def __init__(self, sigma: float):
        self.sigma = sigma
        self.half = math.ceil(2 * sigma) if sigma > 0 else 0
        self.held: deque = deque()                 # (frame number, payload, faces)
        self.paths: dict = {}                      # track key -> {frame number: landmarks}

    @classmethod
    def for_video(cls, fps: float, smooth: bool = True) -> "Lookahead":
        # the rate a file declares, at most MAX_FPS: the window holds 4 sigma of frames, and a
        # crafted file declaring 1,000,000 frames a second held every frame (a 2 MB file: 3.8 GB)
        return cls(SIGMA_SECONDS * min(fps, MAX_FPS) if smooth else 0.0)

    def push(self, index: int, payload, faces: list) -> list:
        self.held.append((index, payload, faces))
        for key, marks in faces if self.half else ():     # no smoothing: no paths to keep
            self.paths.setdefault(key, {})[index] = marks
        return self._release(index - self.half)

    def flush(self) -> list:
        return self._release(math.inf)

    def _release(self, upto) -> list:
        out = []
        while self.held and self.held[0][0] <= upto:
            index, payload, faces = self.held.popleft()
            out.append((index, payload, [(self._fit(key, index, marks), marks) for key, marks in faces]))
        first = self.held[0][0] - self.half if self.held else math.inf   # what held frames need
        for key in list(self.paths):
            path = self.paths[key] = {i: m for i, m in self.paths[key].items() if i >= first}
            if not path:
                del self.paths[key]
        return out

    def _fit(self, key, index: int, marks: np.ndarray) -> np.ndarray:
        if not self.half:
            return marks
        near = [(i, m) for i, m in self.paths[key].items() if abs(i - index) <= self.half]
        return line_fit([i for i, _ in near], [m for _, m in near], index, self.sigma)


class SceneCuts:
    """True when a frame differs from the previous one like a cut (mean absolute difference of
    small grey thumbnails above `threshold` grey levels)."""

    def __init__(self, threshold: float = 30.0):
        self.threshold, self.prev = threshold, None

    @staticmethod
    def thumb(rgb: np.ndarray) -> np.ndarray:
        """The frame's small grey thumbnail the cuts are judged on (depends on the frame alone)."""
        return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (64, 36),
                          interpolation=cv2.INTER_AREA).astype(np.float32)

    def __call__(self, rgb: np.ndarray, thumb: np.ndarray | None = None) -> bool:
        """`thumb`: this frame's thumbnail when already made (`thumb`), else made here."""
        thumb = self.thumb(rgb) if thumb is None else thumb
        cut = self.prev is not None and float(np.abs(thumb - self.prev).mean()) > self.threshold
        self.prev = thumb
        return cut
