"""The swap's model stage alone: faces/s through the shared encoder and one decoder (with the
landmark cue), per preset, batch size and device, side by side in one run.

    python benchmarks/model_speed.py [--device auto] [--batch 1 16 64] [--seconds 2]

Each preset runs as a swap runs it (runtime.cast_for_inference: conv and dense weights stored
in the autocast dtype once) and, in the row below it, with float32 weights that autocast casts
at every call (the previous versions).

This is the part of `facepair swap` a GPU speeds up (detection, landmarks, blending and the
x264 encode stay on the CPU); it needs neither dlib nor PyAV, so it also runs where the whole
swap cannot. Untrained weights: speed does not depend on training.
"""
from __future__ import annotations

import argparse
import time

import torch

from facepair.model.autoencoder import FacePair
from facepair.model.presets import PRESETS
from facepair.runtime import autocast, cast_for_inference, resolve_device, resolve_precision


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def faces_per_s(name: str, batch: int, device, precision: str, seconds: float, cast: bool = True) -> float:
    model = FacePair(PRESETS[name].model).to(device, memory_format=torch.channels_last).eval()
    if cast:
        cast_for_inference(model, precision)
    size = model.cfg.size
    faces = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    marks = torch.rand(batch, 68, 2, device=device) * size
    amp = autocast(device, precision)

    def forward():
        with torch.no_grad(), amp:
            model.swap(faces, "b", marks if model.cfg.cue_points else None)
    for _ in range(3):                                  # warm-up: allocations, kernels chosen
        forward()
    sync(device)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        forward()
        n += 1
    sync(device)
    return n * batch / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--presets", nargs="+", default=["mouth", "hd"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--seconds", type=float, default=2.0, help="timed per configuration")
    args = ap.parse_args()
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"model stage of a swap (encode + one decoder, no_grad, {precision}), {device} ({name}):")
    print(f"{'preset':10s}" + "".join(f"{'batch ' + str(b):>14s}" for b in args.batch) + "   faces/s")
    for p in args.presets:
        for cast, label in ((True, p), (False, "  uncast")):
            row = [faces_per_s(p, b, device, precision, args.seconds, cast) for b in args.batch]
            print(f"{label:10s}" + "".join(f"{r:14.0f}" for r in row), flush=True)


if __name__ == "__main__":
    main()
