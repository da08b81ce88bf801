"""Temporal stability: a One-Euro filter on landmarks and a scene-cut test.

One-Euro (Casiez et al., CHI 2012): an adaptive low-pass filter whose cut-off rises with speed, so
a still face stops jittering while a moving face does not lag. Reset on scene cuts and new faces.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


class OneEuro:
    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.fps)

    def reset(self):
        self.x = self.dx = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = x, np.zeros_like(x)
            return x.copy()
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * (x - self.x) * self.fps + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()


class SceneCuts:
    """True when a frame differs from the previous one like a cut (mean absolute difference of
    small grey thumbnails above `threshold` grey levels)."""

    def __init__(self, threshold: float = 30.0):
        self.threshold, self.prev = threshold, None

    def __call__(self, rgb: np.ndarray) -> bool:
        thumb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (64, 36),
                           interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = self.prev is not None and float(np.abs(thumb - self.prev).mean()) > self.threshold
        self.prev = thumb
        return cut
