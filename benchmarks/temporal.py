"""Does the temporal decoder steady the swap? A video of a recording no model saw (obama_clip2),
swapped A->B by each preset trained on obama_clip1 + Reagan for the same budget, with and without
swap's landmark smoothing, then measured per frame (evaluate.score.video_figures):
flicker of the face region and landmark jitter (each swap / source: lower is steadier), and the
mouth-opening correlation, mouth movement (swap / source) and landmark error along the video.

The models are those of `benchmarks/quality.py --split cross --out DIR` (trained here when
missing, with the same settings), so the two benchmarks share their 20-minute runs.

    python benchmarks/temporal.py [--out bench_quality] [--minutes 20] [--seconds 30]
                                  [--presets seq2seq seq2seq-temporal]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import facepair
from facepair.evaluate.score import video_figures
from facepair.model.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
COLUMNS = [("flicker", "flicker_ratio", "{:.2f}"), ("jitter", "jitter_ratio", "{:.2f}"),
           ("mouth r", "video_mouth_corr", "{:.2f}"), ("mouth move", "video_mouth_std_ratio", "{:.2f}"),
           ("eyelid r", "video_eyelid_corr", "{:.2f}"), ("lmk err", "video_landmark_error", "{:.3f}"),
           ("ID", "video_id_rate", "{:.0%}"), ("fail", "video_failures", "{}")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench_quality"), help="quality.py's cross-split folder")
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget of a missing model")
    ap.add_argument("--seconds", type=float, default=30.0, help="of obama_clip2 swapped (it is 30 s)")
    ap.add_argument("--presets", nargs="+", default=["seq2seq", "seq2seq-temporal"],
                    choices=list(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    obama1, obama2 = DATA / "faces/obama/obama_clip1.mp4", DATA / "faces/obama/obama_clip2.mp4"
    for name, clip in (("obama1", obama1), ("reagan", DATA / "faces/reagan/reagan_clip1.mp4")):
        if not (args.out / name / "faceset.json").exists():
            facepair.extract([clip], args.out / name, progress=False)
    rows = {}
    for preset in args.presets:
        model = args.out / f"model-{preset}"
        if not model.exists():
            facepair.train(a=[args.out / "obama1"], b=[args.out / "reagan"], model_dir=str(model),
                           preset=preset, minutes=args.minutes, save_every=500,
                           preview_every=500, seed=args.seed, progress=False)
        for smooth in (True, False):
            label = f"{preset}{'' if smooth else ' --no-smooth'}"
            r = video_figures(model, obama2, "a2b", args.seconds, smooth=smooth, reconstruct=False)
            rows[label] = {k: v for k, v in r.items() if not k.startswith("_")}
            print(f"{label}: done", flush=True)
    (args.out / "temporal.json").write_text(json.dumps(rows, indent=1))
    any_row = next(iter(rows.values()))
    print(f"\nA->B on the first {args.seconds:g} s of obama_clip2 (never seen in training): "
          f"{any_row['video_frames']} frames; flicker and jitter are swap / source")
    print(f"{'model':30s}" + "".join(f"{c:>12s}" for c, _, _ in COLUMNS))
    for label, r in rows.items():
        print(f"{label:30s}" + "".join(f"{f.format(r[k]):>12s}" for _, k, f in COLUMNS))


if __name__ == "__main__":
    main()
