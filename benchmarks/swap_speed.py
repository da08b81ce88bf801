"""Swap speed: end-to-end frames/s of `facepair swap` on the shared 720p video, with the share of
time per stage (decode, detect, landmarks, model, blend, encode incl. watermark), for each engine
(torch, the previous version's path; onnx, ONNX Runtime) side by side in one run.

    python benchmarks/swap_speed.py [--model MODEL_DIR] [--seconds 10]

Without --model it trains a throwaway seed model for 5 steps first (speed does not depend on
how well a model is trained).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import facepair
from facepair.api import swap
from facepair.swap.options import SwapOptions

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--video", type=Path, default=DATA / "video/obama_weekly_address_720p.mp4")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of video to swap")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            facepair.extract([DATA / "faces/obama/obama_clip1.mp4"], tmp / "a", every=10, progress=False)
            facepair.extract([DATA / "faces/reagan/reagan_clip1.mp4"], tmp / "b", every=10, progress=False)
            model = tmp / "model"
            facepair.train(a=[tmp / "a"], b=[tmp / "b"], model_dir=model, steps=5, progress=False)
        fps = {}
        for every in (5, 1):
            for engine in ("torch", "onnx"):     # torch: the previous version's path
                s = swap(args.video, model, tmp / "out.mp4", SwapOptions(
                    detect_every=every, duration=args.seconds, engine=engine, progress=False))
                fps[every, engine] = s.fps
                stages = dict(s.stage_seconds)
                other = s.seconds - sum(stages.values())
                shares = "  ".join(f"{k} {v / s.seconds:.0%}" for k, v in stages.items())
                print(f"swap --detect-every {every} --engine {engine}: {s.fps:.1f} frames/s end to end "
                      f"({s.frames} frames, {s.faces_swapped} faces)\n  time shares: {shares}  "
                      f"other {other / s.seconds:.0%}", flush=True)
            print(f"  onnx / torch: {fps[every, 'onnx'] / fps[every, 'torch']:.2f}x", flush=True)

if __name__ == "__main__":
    main()
