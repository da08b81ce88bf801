"""Quality per compute: train `seed` and each other preset for the same wall-clock budget on the
same data (the shared Obama clips as A, the Reagan clip as B; each model holds out 5 % of each side's
frames, in 4 blocks spread over the footage), evaluate each on its held-out faces, swapped as
crops and into their whole source frames, and print one table.

    python benchmarks/quality.py [--minutes 20] [--presets seed quick ...] [--out DIR] [--seed N]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import facepair
from facepair.api import evaluate
from facepair.evaluate.report import figures
from facepair.model.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
COLUMNS = [("steps", "step", "{}"),        # frame_*: held-out frames swapped whole (the target)
           ("ID A->B", "frame_id_rate_a2b", "{:.0%}"), ("ID B->A", "frame_id_rate_b2a", "{:.0%}"),
           ("mouth r A->B", "frame_mouth_corr_a2b", "{:.2f}"), ("mouth r B->A", "frame_mouth_corr_b2a", "{:.2f}"),
           ("lmk err A->B", "frame_landmark_error_a2b", "{:.3f}"), ("lmk err B->A", "frame_landmark_error_b2a", "{:.3f}"),
           ("crop r A->B", "mouth_corr_a2b", "{:.2f}"), ("crop r B->A", "mouth_corr_b2a", "{:.2f}"),
           ("SSIM A", "ssim_a", "{:.3f}"), ("SSIM B", "ssim_b", "{:.3f}")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget per preset")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--out", type=Path, default=Path("bench_quality"), help="work folder (kept)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (another seed: another --out)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = {"obama": [DATA / "faces/obama/obama_clip1.mp4", DATA / "faces/obama/obama_clip2.mp4"],
            "reagan": [DATA / "faces/reagan/reagan_clip1.mp4"]}
    for name, clips in sets.items():
        if not (args.out / name / "faceset.json").exists():
            facepair.extract(clips, args.out / name, progress=False)
    results = {}
    for preset in args.presets:
        model = args.out / f"model-{preset}"
        if not model.exists():      # a kept folder is re-evaluated, not trained further
            facepair.train(a=[args.out / "obama"], b=[args.out / "reagan"], model_dir=str(model),
                           preset=preset, minutes=args.minutes, save_every=500,
                           preview_every=500, seed=args.seed, progress=False)
        results[preset] = figures(evaluate(model))
        print(f"{preset}: done", flush=True)
    (args.out / "quality.json").write_text(json.dumps(results, indent=1))
    head = f"{'preset':10s}" + "".join(f"{c:>13s}" for c, _, _ in COLUMNS)
    print(f"\n{args.minutes:g} minutes of training per preset, evaluated on held-out faces\n{head}")
    for preset, r in results.items():
        print(f"{preset:10s}" + "".join(f"{f.format(r[k]) if k in r else '-':>13s}" for _, k, f in COLUMNS))


if __name__ == "__main__":
    main()
