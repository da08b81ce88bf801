"""Extraction speed on the shared 720p video: `extract --detector hog` end to end, each detector,
and the stages on their own (decode, HOG at several scales, landmarks), side by side in one run.

    python benchmarks/extract_speed.py [--video PATH] [--every-other N]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2

import facepair
from facepair.faces.detect import make_detector
from facepair.faces.landmarks import Landmarker
from facepair.media.video import iter_video

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))


def end_to_end(video, detector, every=1):
    with tempfile.TemporaryDirectory() as tmp:
        s = facepair.extract([video], Path(tmp) / "fs", detector=detector, every=every, progress=False)
    return s.fps, s.frames_read, s.faces_kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=DATA / "video/obama_weekly_address_720p.mp4", type=Path)
    ap.add_argument("--every-other", type=int, default=5,
                    help="frame step for the slower per-detector runs (default: 5)")
    args = ap.parse_args()

    fps, n, kept = end_to_end(args.video, "hog")
    print(f"extract --detector hog, every frame: {fps:.1f} frames/s ({n} frames, {kept} faces) "
          f"-> {fps / 25:.2f}x the 25 frames/s target")
    for det in ("haar", "hog", "cnn"):
        fps, n, kept = end_to_end(args.video, det, args.every_other)
        print(f"extract --detector {det:4s} --every {args.every_other}: {fps:6.1f} frames/s "
              f"({n} frames, {kept} faces)")

    frames = [f for _, f in zip(range(150), (f for _, f in iter_video(args.video)))]
    t = time.perf_counter()
    decoded = sum(1 for _ in iter_video(args.video))
    print(f"stage: PyAV decode to RGB {decoded / (time.perf_counter() - t):.0f} frames/s")
    h, w = frames[0].shape[:2]
    for size in (0, 640, 480, 427):
        det = make_detector("hog", size)
        t = time.perf_counter()
        found = sum(len(det(f)) == 1 for f in frames)
        label = "full size" if not size else f"longer side {size}"
        print(f"stage: HOG at {label:16s} {len(frames) / (time.perf_counter() - t):6.1f} frames/s, "
              f"one face in {found}/{len(frames)}")
    lm, det = Landmarker(), make_detector("hog", 480)
    boxes = [det(f)[0] for f in frames[:50]]
    t = time.perf_counter()
    for f, b in zip(frames, boxes):
        lm(f, b)
    print(f"stage: 68 landmarks {(time.perf_counter() - t) / len(boxes) * 1000:.2f} ms per face "
          f"({w}x{h} frames, {cv2.getNumThreads()} OpenCV threads)")


if __name__ == "__main__":
    main()
