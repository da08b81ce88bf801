"""Face embeddings: dlib's own network (dlib-bin) against the same network and weights run by
torch (facepair.faces.descriptor), side by side in one run on the same chips.

    python benchmarks/embedding.py [--chips N] [--threads N]

Chips are cut as calibration and evaluate cut them (dlib's 150 px chip from 68 landmarks) from
frames of the shared clips of four people. Printed: milliseconds per chip one at a time and in
batches, and the largest difference between the two networks' numbers.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import dlib
import numpy as np
import torch

from facepair.faces.detect import make_detector, model_file
from facepair.faces.identity import Embedder
from facepair.faces.landmarks import Landmarker
from facepair.media.video import iter_video

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
CLIPS = ("obama/obama_clip1.mp4", "reagan/reagan_clip1.mp4", "feifeili/feifeili_clip1.mp4", "andrew/andrew_clip1.mp4")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=int, default=64, help="chips in all, spread over the four clips")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det, lm, emb = make_detector("hog"), Landmarker(), Embedder()
    chips = []
    for clip in CLIPS:
        for _, frame in iter_video(DATA / "faces" / clip, only=set(range(0, 200, 800 // args.chips or 1))):
            boxes = det(frame)
            if boxes and len(chips) < args.chips:
                chips.append(emb.chip(frame, lm(frame, boxes[0])))
    net = dlib.face_recognition_model_v1(model_file("dlib_face_recognition_resnet_model_v1.dat"))
    emb.many(chips[:2])                                   # warm up
    t = time.perf_counter()
    theirs = np.array([net.compute_face_descriptor(c) for c in chips], np.float32)
    t_dlib = time.perf_counter() - t
    t = time.perf_counter()
    one = np.stack([emb.from_aligned(c) for c in chips])
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    batched = emb.many(chips)
    t_batch = time.perf_counter() - t
    n = len(chips)
    print(f"face embeddings, {n} chips, torch {args.threads} threads (dlib: one thread):")
    print(f"  dlib's network (dlib-bin)    {t_dlib / n * 1000:6.1f} ms a chip")
    print(f"  torch, one at a time         {t_one / n * 1000:6.1f} ms a chip ({t_dlib / t_one:.1f}x)")
    print(f"  torch, batches of 16         {t_batch / n * 1000:6.1f} ms a chip ({t_dlib / t_batch:.1f}x)")
    print(f"  largest difference from dlib's numbers: {np.abs(one - theirs).max():.1e} (one at a time), "
          f"{np.abs(batched - theirs).max():.1e} (batched)")


if __name__ == "__main__":
    main()
