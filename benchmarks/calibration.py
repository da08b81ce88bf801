"""Calibration time: how long measuring a landmark-cue model's swap setting takes after `train`,
this version against the previous one, side by side in one run, with the settings each chose.

    python benchmarks/calibration.py [--model MODEL_DIR ...] [--baseline REV] [--baseline-faces N|auto]
                                     [--threads N]

Each model is copied twice and calibrated by each version in a process of its own (as `train`
runs it after training): the previous version (`--baseline`, checked out from git) on 256
frames per side (`--baseline-faces`), this version on its default (by the training's length,
evaluate/calibrate.faces_for). Printed per model: the training time recorded in its state.json,
the budget the issue sets (5 % of it or 30 s, whichever is larger), each version's seconds and
each direction's setting (centre, gain, lids' gain), and whether the choices agree. Without
--model a throwaway `hd` model is trained for 4 steps first (the short case). Speeds are only
comparable within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import facepair

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
BASELINE = "e9ebb67"        # main before calibration's coarse-then-fine passes
RUN = """
import json, sys, time
from facepair.evaluate.calibrate import calibrate
faces = None if sys.argv[2] == "auto" else int(sys.argv[2])
t = time.perf_counter()
best = calibrate(sys.argv[1], faces)
print(json.dumps({"seconds": time.perf_counter() - t, "best": best}))
"""


def calibrate_with(src: Path, model: Path, faces: str, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-c", RUN, str(model), faces], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{src}: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def setting(best: dict) -> str:
    return "  ".join(f"{k} {v['shift']:g}/{v['gain']:g}x" + (f"/lids {v['lid_gain']:g}x" if "lid_gain" in v else "")
                     for k, v in best.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", help="a trained landmark-cue model (repeatable)")
    ap.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of each run")
    ap.add_argument("--baseline-faces", default="256",
                    help="frames per side for the previous version ('auto': its own default, for a "
                         "baseline that already sets them by training length)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = args.model
        if not models:
            facepair.extract([DATA / "faces/obama/obama_clip1.mp4"], tmp / "a", every=4, progress=False)
            facepair.extract([DATA / "faces/reagan/reagan_clip1.mp4"], tmp / "b", every=4, progress=False)
            facepair.train(a=[tmp / "a"], b=[tmp / "b"], model_dir=tmp / "short", steps=4, progress=False,
                           calibrate_faces=0)
            models = [tmp / "short"]
        old = tmp / "baseline"
        subprocess.run(f"git -C {ROOT} archive {args.baseline} src | tar -x -C {tmp} && mv {tmp}/src {old}",
                       shell=True, check=True)
        print(f"calibration, previous version ({args.baseline}, {args.baseline_faces} frames per side) against this one "
              f"(frames by training length), {args.threads} threads:")
        for model in models:
            state = json.loads((model / "state.json").read_text())
            trained = state.get("train_seconds", 0.0)
            budget = max(30.0, 0.05 * trained)
            got = {}
            for name, (src, faces) in {"previous": (old, args.baseline_faces), "this": (ROOT / "src", "auto")}.items():
                copy = tmp / f"{model.name}-{name}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(model, copy, ignore=shutil.ignore_patterns("tb", "previews"))
                got[name] = calibrate_with(src, copy, faces, args.threads)
            p, t = got["previous"], got["this"]
            print(f"  {model.name}: {state.get('preset')} trained {trained / 60:.1f} min, "
                  f"budget {budget:.0f} s", flush=True)
            print(f"    previous {p['seconds']:6.1f} s   {setting(p['best'])}")
            print(f"    this     {t['seconds']:6.1f} s   {setting(t['best'])}   "
                  f"({p['seconds'] / t['seconds']:.1f}x faster, {'within' if t['seconds'] <= budget else 'OVER'} "
                  f"budget; same choice: {'yes' if p['best'] == t['best'] else 'no'})", flush=True)


if __name__ == "__main__":
    main()
