"""Quality per compute: train `seed` and each other preset for the same wall-clock budget on the
same data, evaluate each, swapped as crops and into their whole source frames, and print one table.

--split blocks (default): A = both shared Obama clips, B = the Reagan clip; each model holds out
5 % of each side's frames in 4 blocks spread over the footage and is measured there.
--split cross: A = obama_clip1 only; the A->B figures are measured on the whole of obama_clip2, a
recording the model never saw (the real use: a new video of A), plus the flicker of 10 s of it
swapped; B->A on B's held-out blocks as before.

    python benchmarks/quality.py [--minutes 20] [--presets seed quick ...] [--split blocks|cross]
                                 [--out DIR] [--seed N]
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
           ("SSIM A", "ssim_a", "{:.3f}"), ("SSIM B", "ssim_b", "{:.3f}"),
           ("flicker A->B", "flicker_ratio", "{:.2f}")]
CROSS_FACES = 256           # --split cross: obama_clip2 faces scored (evenly spread over its 902)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget per preset")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--out", type=Path, default=Path("bench_quality"), help="work folder (kept)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (another seed: another --out)")
    ap.add_argument("--split", choices=["blocks", "cross"], default="blocks",
                    help="blocks: held-out blocks of the training clips; cross: A measured on a "
                    "recording never seen in training")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    obama1, obama2 = DATA / "faces/obama/obama_clip1.mp4", DATA / "faces/obama/obama_clip2.mp4"
    sets = {"obama": [obama1, obama2], "reagan": [DATA / "faces/reagan/reagan_clip1.mp4"]}
    if args.split == "cross":
        sets = {"obama1": [obama1], "obama2": [obama2], "reagan": sets["reagan"]}
    for name, clips in sets.items():
        if not (args.out / name / "faceset.json").exists():
            facepair.extract(clips, args.out / name, progress=False)
    a_train = args.out / ("obama" if args.split == "blocks" else "obama1")
    results = {}
    for preset in args.presets:
        model = args.out / f"model-{preset}"
        if not model.exists():      # a kept folder is re-evaluated, not trained further
            facepair.train(a=[a_train], b=[args.out / "reagan"], model_dir=str(model),
                           preset=preset, minutes=args.minutes, save_every=500,
                           preview_every=500, seed=args.seed, progress=False)
        results[preset] = figures(evaluate(model))
        if args.split == "cross":   # A->B on the unseen recording (B's faces there: the training set)
            new = figures(evaluate(model, a=[args.out / "obama2"], b=[args.out / "reagan"],
                                   max_faces=CROSS_FACES, video=obama2, video_seconds=10))
            results[preset].update({k: v for k, v in new.items() if k.endswith("_a2b") or k.startswith("flicker")})
        print(f"{preset}: done", flush=True)
    (args.out / "quality.json").write_text(json.dumps(results, indent=1))
    head = f"{'preset':10s}" + "".join(f"{c:>13s}" for c, _, _ in COLUMNS)
    where = "held-out faces" if args.split == "blocks" else \
        "A->B on obama_clip2 (never seen), B->A on held-out faces"
    print(f"\n{args.minutes:g} minutes of training per preset, evaluated on {where}\n{head}")
    for preset, r in results.items():
        print(f"{preset:10s}" + "".join(f"{f.format(r[k]) if k in r else '-':>13s}" for _, k, f in COLUMNS))


if __name__ == "__main__":
    main()
