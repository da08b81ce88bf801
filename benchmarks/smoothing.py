"""How swap's landmark smoothing trades steadiness for lag, without any model: the faces of each
clip are followed as `swap` follows them (detector every 5 frames, tracking between, scene cuts),
then each candidate filter runs over the landmarks as found, and two figures are printed:

- jitter: the filtered landmarks' jitter over the found ones' (evaluate.metrics.jitter: the
  frame-to-frame change of motion of points 17-67; lower is steadier);
- moved: how far the filter moves the inner-face points from where they were found, over the
  inter-ocular distance (the face is pasted there, so this adds to a swap's landmark error).

Candidates: the previous version's causal One-Euro filter (min cut-off 1 Hz, beta 0.02) and a few
gentler settings of it, and swap's centred line fit (smooth.Lookahead) at several widths. The rule
that chose swap's width (smooth.SIGMA_SECONDS), fixed before it was measured on obama_clip2: the
filter that moves the landmarks least among those at least as steady as the previous version's,
pooled over the clips below, none of which is obama_clip2 (the clip the swaps are judged on).

    python benchmarks/smoothing.py [--clips VIDEO ...]
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np

from facepair.evaluate.metrics import jitter
from facepair.faces.detect import make_detector
from facepair.faces.landmarks import INNER_FACE, Landmarker, inter_ocular
from facepair.media.video import iter_video, video_info
from facepair.swap.smooth import SIGMA_SECONDS, Lookahead
from facepair.swap.tracker import FaceTracker

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
CLIPS = [DATA / "video/obama_weekly_address_720p.mp4", DATA / "faces/obama/obama_clip1.mp4",
         DATA / "faces/reagan/reagan_clip1.mp4"]


class OneEuro:
    """The previous version's filter (Casiez et al., CHI 2012), kept here to compare against: an
    adaptive low-pass whose cut-off rises with speed. Causal, so a moving face lags."""

    def __init__(self, fps: float, min_cutoff: float, beta: float, d_cutoff: float = 1.0):
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    def _alpha(self, cutoff):
        return 1.0 / (1.0 + self.fps / (2 * math.pi * cutoff))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.x is None:
            self.x, self.dx = x, np.zeros_like(x)
            return x
        self.dx = self._alpha(self.d_cutoff) * ((x - self.x) * self.fps - self.dx) + self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = a * x + (1 - a) * self.x
        return self.x


def follow(video: Path, det, lm) -> tuple[list, float]:
    """[(track, 68 landmarks as found) or None] per frame, as swap's tracker follows the first face."""
    tracker, out = FaceTracker(det, lm, detect_every=5), []
    for i, frame in iter_video(video):
        found = tracker.landmarks(frame, i, True)
        out.append((found[0], found[0].marks.astype(np.float64)) if found else None)
    return out, video_info(video)["fps"]


def one_euro(seq: list, fps: float, min_cutoff: float, beta: float) -> list:
    out, track, f = [], None, None
    for s in seq:
        if s is not None and s[0] is not track:          # a new face: a new filter
            track, f = s[0], OneEuro(fps, min_cutoff, beta)
        out.append(None if s is None else f(s[1]))
    return out


def centred(seq: list, sigma: float) -> list:
    """swap's own smoothing, through the same streaming class."""
    look, out = Lookahead(sigma), {}
    for i, s in enumerate(seq):
        for index, _, faces in look.push(i, None, [] if s is None else [(s[0], s[1])]):
            out[index] = faces[0][0] if faces else None
    for index, _, faces in look.flush():
        out[index] = faces[0][0] if faces else None
    return [out[i] for i in range(len(seq))]


def figures(seq: list, filtered: list) -> tuple[float, float]:
    found = [s[1] if s else None for s in seq]
    moved = [np.linalg.norm(f[INNER_FACE] - r[INNER_FACE], axis=1).mean() / inter_ocular(r[None])[0]
             for f, r in zip(filtered, found) if r is not None]
    return jitter(filtered) / jitter(found), float(np.mean(moved))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", type=Path, default=CLIPS)
    args = ap.parse_args()
    det, lm = make_detector("hog"), Landmarker()
    followed = {clip.name: follow(clip, det, lm) for clip in args.clips}
    fps = {name: f for name, (_, f) in followed.items()}
    candidates = [("One-Euro 1 Hz, beta 0.02 (previous)", lambda s, n: one_euro(s, fps[n], 1.0, 0.02))]
    candidates += [(f"One-Euro {mc:g} Hz, beta {b:g}", lambda s, n, mc=mc, b=b: one_euro(s, fps[n], mc, b))
                   for mc, b in [(2.0, 0.02), (1.0, 0.1), (2.0, 0.1), (4.0, 0.05)]]
    candidates += [(f"centred, sigma {sg:g} s{' (swap)' if sg == SIGMA_SECONDS else ''}",
                    lambda s, n, sg=sg: centred(s, sg * fps[n])) for sg in (0.025, 0.033, 0.05, 0.067, 0.1)]
    print(f"{'filter':<38}" + "".join(f"{n[:22]:>24}" for n in followed) + f"{'pooled':>16}")
    print(f"{'':<38}" + "".join(f"{'jitter / moved':>24}" for _ in followed) + f"{'':>16}")
    rows = []
    for name, fn in candidates:
        r = [figures(seq, fn(seq, n)) for n, (seq, _) in followed.items()]
        pooled = (float(np.mean([j for j, _ in r])), float(np.mean([m for _, m in r])))
        rows.append((name, pooled))
        print(f"{name:<38}" + "".join(f"{j:>15.2f} / {m:.4f}" for j, m in r) +
              f"{pooled[0]:>7.2f} / {pooled[1]:.4f}")
    steady = rows[0][1][0]
    pick = min((r for r in rows if r[1][0] <= steady), key=lambda r: r[1][1])
    print(f"\nleast moved among those at least as steady as the previous filter ({steady:.2f}): "
          f"{pick[0]} (jitter {pick[1][0]:.2f}, moved {pick[1][1]:.4f} against {rows[0][1][1]:.4f})")


if __name__ == "__main__":
    main()
