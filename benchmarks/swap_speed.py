"""Swap speed: frames/s of `facepair swap` on the shared 720p video, this version's engines
(torch, onnx; the default --occlusion auto, and none; --color skin) and the previous version
side by side in one run, with the share of time per stage.

    python benchmarks/swap_speed.py [--model MODEL_DIR] [--also MODEL_DIR ...] [--seconds 10]
                                    [--baseline REV ...] [--rounds 2]

Each configuration runs as the `facepair swap` command (a process of its own, as users run it),
in turn, `--rounds` times; printed: the median of its own counter (frames / seconds inside the
swap, after the imports) and of the wall time of the whole command. Each `--baseline REV`
(default: the commit before 0.2.0's speed work) is checked out from git into a temporary folder
and run the same way; ratios are to the first one. Without --model a throwaway model of the
default preset is trained for 5 steps first (speed does not depend on how well a model is
trained). `--also`: other models (another preset's layout) swapped by this version in the same
rounds, with the default options. Stage shares come from this version's in-process run (the
writer's and the reader's threads overlap the rest, so shares can add up past 100 %; `detect
ahead` is the detector's time in the reader's thread).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import facepair
from facepair.api import swap
from facepair.swap.options import SwapOptions

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
BASELINE = "0da539d"        # main before 0.2.0's writer thread and ONNX engine


def run_cli(src: Path, args: list) -> tuple[float, float]:
    """(frames/s by the command's own counter, wall seconds) of `facepair swap ARGS` with the
    package at `src`."""
    env = dict(os.environ, PYTHONPATH=str(src))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "facepair", "swap", *map(str, args), "--quiet"],
                       env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{src}: {r.stderr.strip()}")
    return float(re.search(r"\(([\d.]+) frames/s\)", r.stdout).group(1)), wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--video", type=Path, default=DATA / "video/obama_weekly_address_720p.mp4")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of video to swap")
    ap.add_argument("--baseline", nargs="*", default=[BASELINE],
                    help="git revisions to compare with (none: '' or no value)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--also", type=Path, nargs="*", default=[], metavar="MODEL_DIR",
                    help="other models to swap with this version in the same rounds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            facepair.extract([DATA / "faces/obama/obama_clip1.mp4"], tmp / "a", every=10, progress=False)
            facepair.extract([DATA / "faces/reagan/reagan_clip1.mp4"], tmp / "b", every=10, progress=False)
            model = tmp / "model"
            facepair.train(a=[tmp / "a"], b=[tmp / "b"], model_dir=model, steps=5, progress=False)
        common = [args.video, "--model", model, "--duration", args.seconds]
        runs = {f"this version, --engine {e}": (ROOT / "src", ["--engine", e]) for e in ("torch", "onnx")}
        runs["this version, --occlusion none"] = (ROOT / "src", ["--engine", "torch", "--occlusion", "none"])
        runs["this version, --color skin"] = (ROOT / "src", ["--engine", "torch", "--color", "skin"])
        for other in args.also:
            runs[f"this version, model {other.name}"] = (ROOT / "src", ["--engine", "torch", "--model", other])
        before = {}
        for rev in filter(None, args.baseline):
            old = tmp / f"baseline-{len(before)}"
            subprocess.run(f"git -C {ROOT} archive {rev} src | tar -x -C {tmp} && mv {tmp}/src {old}",
                           shell=True, check=True)
            before[f"previous version ({rev})"] = (old, [])
        runs = {**before, **runs}
        got = {name: [] for name in runs}
        for k in range(args.rounds):                     # in turn, so that load hits all alike
            for name, (src, extra) in runs.items():
                got[name].append(run_cli(src, [*common, "-o", tmp / f"out{k}.mp4", *extra]))
        first = next(iter(runs))
        base = statistics.median(f for f, _ in got[first])
        print(f"swap of {args.seconds:g} s of {args.video.name}, {args.rounds} rounds, medians:")
        for name, rows in got.items():
            fps, wall = statistics.median(f for f, _ in rows), statistics.median(w for _, w in rows)
            print(f"  {name:34s} {fps:5.1f} frames/s ({fps / base:.2f}x)   whole command {wall:5.1f} s",
                  flush=True)
        for engine in ("torch", "onnx"):                  # where this version's time goes
            s = swap(args.video, model, tmp / "out.mp4", SwapOptions(
                duration=args.seconds, engine=engine, progress=False))
            shares = "  ".join(f"{k} {v / s.seconds:.0%}" for k, v in s.stage_seconds.items())
            print(f"  stage shares, --engine {engine} (in process, {s.fps:.1f} frames/s): {shares}")


if __name__ == "__main__":
    main()
