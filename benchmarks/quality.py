"""Quality per compute: train `seed` and each other preset for the same wall-clock budget on the
same data, evaluate each, swapped as crops and into their whole source frames, and print one table.

--split blocks (default): A = both shared Obama clips, B = the Reagan clip; each model holds out
5 % of each side's frames in 4 blocks spread over the footage and is measured there.
--split cross: A = obama_clip1 only; A->B is measured on the whole of obama_clip2, a recording the
model never saw (the real use: a new video of A), swapped as a video and scored frame by frame
(evaluate's --video figures: failures, ID, mouth and eyelid r, landmark error, face detail, the
clip rebuilt A->A (SSIM, GMSD), flicker, jitter); B->A on B's held-out blocks as before.

--pair obama (default): Obama (A) and Reagan (B), as above. --pair feifeili: the second
development pair, Fei-Fei Li (A: feifeili_clip1 + clip2, one talk) and Andrew Ng (B: andrew_clip1),
judged with --split cross on feifeili_clip3, a recording never trained on (blocks: held out of
the training clips); --pair both runs one after the other and prints both tables. Each pair works
in its own folder under --out.

--seconds 8: little footage: each side trains on the first 8 s of its first clip only (240 frames
at 30 fps; cut losslessly enough, CRF 12, into --out/clips), judged as above.

--curve 20 40 60: train each preset to 20 minutes, evaluate, resume to 40, evaluate, ... (one run,
the figures of each point in quality.json under "<preset>@<minutes>"). A preset at another crop
size (hd: 128 px) gets its own face sets of the same clips, extracted at its size.

    python benchmarks/quality.py [--minutes 20 | --curve 20 40 60] [--presets seed quick ...]
                                 [--split blocks|cross] [--pair obama|feifeili|both] [--seconds S]
                                 [--color lab|skin|...] [--batch-size N]
                                 [--out DIR] [--seed N]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import av

import facepair
from facepair.api import evaluate
from facepair.evaluate.report import figures
from facepair.model.presets import PRESETS
from facepair.swap.options import COLORS, SwapOptions

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
COLUMNS = [("steps", "step", "{}"),        # frame_*: held-out frames swapped whole (the target)
           ("ID A->B", "frame_id_rate_a2b", "{:.0%}"), ("ID B->A", "frame_id_rate_b2a", "{:.0%}"),
           ("mouth r A->B", "frame_mouth_corr_a2b", "{:.2f}"), ("mouth r B->A", "frame_mouth_corr_b2a", "{:.2f}"),
           ("lmk err A->B", "frame_landmark_error_a2b", "{:.3f}"), ("lmk err B->A", "frame_landmark_error_b2a", "{:.3f}"),
           ("crop r A->B", "mouth_corr_a2b", "{:.2f}"), ("crop r B->A", "mouth_corr_b2a", "{:.2f}"),
           ("SSIM A", "ssim_a", "{:.3f}"), ("SSIM B", "ssim_b", "{:.3f}"),
           ("flicker A->B", "flicker_ratio", "{:.2f}")]
CROSS = [("steps", "step", "{}"), ("fail", "video_failures", "{}"),
         ("ID A->B", "video_id_rate", "{:.0%}"), ("forced", "video_id_forced_rate", "{:.0%}"),
         ("mouth r", "video_mouth_corr", "{:.2f}"), ("mouth mv", "video_mouth_std_ratio", "{:.2f}"),
         ("eyelid r", "video_eyelid_corr", "{:.2f}"), ("lmk err", "video_landmark_error", "{:.3f}"),
         ("detail", "video_detail", "{:.2f}"), ("grid", "grid_a2b", "{:.2f}"),
         ("A->A SSIM", "video_rec_ssim", "{:.3f}"),
         ("A->A GMSD", "video_rec_gmsd", "{:.3f}"), ("A->A eyelid r", "video_rec_eyelid_corr", "{:.2f}"),
         ("flicker", "flicker_ratio", "{:.2f}"),
         ("jitter", "jitter_ratio", "{:.2f}"),
         ("ID B->A", "frame_id_rate_b2a", "{:.0%}"), ("mouth B->A", "frame_mouth_corr_b2a", "{:.2f}"),
         ("skin dE", "video_skin_tone", "{:.2f}"), ("seam", "video_seam", "{:.2f}"),
         ("mottling", "video_mottling", "{:.2f}"), ("mott. col", "video_mottling_chroma", "{:.2f}"),
         ("kept", "video_kept", "{:.1%}")]      # the face kept from the source (--occlusion auto)
# per pair: A's training clips, A's recording never trained on, B's clips (under DATA/faces)
PAIRS = {"obama": (["obama/obama_clip1.mp4"], "obama/obama_clip2.mp4", ["reagan/reagan_clip1.mp4"]),
         "feifeili": (["feifeili/feifeili_clip1.mp4", "feifeili/feifeili_clip2.mp4"],
                      "feifeili/feifeili_clip3.mp4", ["andrew/andrew_clip1.mp4"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget per preset")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--out", type=Path, default=Path("bench_quality"), help="work folder (kept)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (another seed: another --out)")
    ap.add_argument("--split", choices=["blocks", "cross"], default="blocks",
                    help="blocks: held-out blocks of the training clips; cross: A measured on a "
                    "recording never seen in training")
    ap.add_argument("--curve", nargs="+", type=float, metavar="MINUTES",
                    help="evaluate at each of these training times (one run per preset, resumed)")
    ap.add_argument("--pair", choices=[*PAIRS, "both"], default="obama")
    ap.add_argument("--color", choices=COLORS, help="the swaps' --color (default: swap's); a kept "
                    "model is evaluated again, its figures kept as '<preset>+<color>'")
    ap.add_argument("--batch-size", type=int, help="faces per side per step (default: the preset's); "
                    "the model folder and the figures' key get '-bN'")
    ap.add_argument("--lr", type=float, help="the learning rate (default: the preset's); the model "
                    "folder and the figures' key get '-lrX'")
    ap.add_argument("--seconds", type=float, help="train each side on the first S seconds of its "
                    "first clip only")
    args = ap.parse_args()
    for pair in PAIRS if args.pair == "both" else [args.pair]:
        run_pair(args, pair, args.out if args.pair == "obama" else args.out / pair)


def run_pair(args, pair: str, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    a_clips, unseen, b_clips = PAIRS[pair]
    unseen = DATA / "faces" / unseen
    if pair == "obama":             # the folder names earlier runs of this benchmark kept
        sets = {"obama": [DATA / "faces" / c for c in (*a_clips, "obama/obama_clip2.mp4")],
                "reagan": [DATA / "faces" / c for c in b_clips]}
        a_name, b_name = ("obama", "reagan") if args.split == "blocks" else ("obama1", "reagan")
        if args.split == "cross":
            sets = {"obama1": [DATA / "faces" / a_clips[0]], "reagan": sets["reagan"]}
    else:                           # blocks: held out of the training clips; cross: the unseen one
        sets = {"a": [DATA / "faces" / c for c in a_clips], "b": [DATA / "faces" / c for c in b_clips]}
        a_name, b_name = "a", "b"
    if args.seconds:
        sets = {a_name: [cut(sets[a_name][0], out / "clips", args.seconds)],
                b_name: [cut(sets[b_name][0], out / "clips", args.seconds)]}
    points = sorted(args.curve) if args.curve else [args.minutes]
    saved = out / "quality.json"        # other presets' figures in this folder are kept
    results = json.loads(saved.read_text()) if saved.exists() else {}
    for preset in args.presets:
        size = PRESETS[preset].model.size
        folder = {name: out / (name if size == 64 else f"{name}-{size}") for name in sets}
        for name, clips in sets.items():
            if not (folder[name] / "faceset.json").exists():
                facepair.extract(clips, folder[name], size=size, progress=False)
        label = preset + (f"-b{args.batch_size}" if args.batch_size else "") + (f"-lr{args.lr:g}" if args.lr else "")
        model, done = out / f"model-{label}", 0.0
        for minutes in points:
            # a kept folder is re-evaluated, not trained further; a curve point is trained once
            mark = model / f"curve-{minutes:g}min"
            if not model.exists() or args.curve and not mark.exists():
                facepair.train(a=[folder[a_name]], b=[folder[b_name]], model_dir=str(model),
                               preset=preset, minutes=minutes - done, batch_size=args.batch_size, lr=args.lr,
                               save_every=500, preview_every=500, seed=args.seed, progress=False)
                if args.curve:
                    mark.touch()
            done = minutes
            # cross: A->B on the whole unseen recording, as a video; blocks: 4 s of it for flicker
            key = (f"{label}@{minutes:g}" if args.curve else label) + \
                (f"+{args.color}" if args.color else "")
            results[key] = figures(evaluate(model, video=unseen, video_seconds=None if
                                            args.split == "cross" else 4.0,
                                            color=args.color or SwapOptions.color))
            saved.write_text(json.dumps(results, indent=1))
            print(f"{key}: done", flush=True)
    cols, width = (COLUMNS, 13) if args.split == "blocks" else (CROSS, 10)
    head = f"{'preset':17s}" + "".join(f"{c:>{width}s}" for c, _, _ in cols)
    where = "held-out faces" if args.split == "blocks" else \
        f"A->B on every frame of {unseen.name} (never seen), B->A on held-out faces"
    budget = "/".join(f"{m:g}" for m in points)
    print(f"\npair {pair}: {budget} minutes of training per preset, evaluated on {where}\n{head}")
    for preset, r in results.items():
        print(f"{preset:17s}" + "".join(f"{f.format(r[k]) if k in r else '-':>{width}s}" for _, k, f in cols))


def cut(clip: Path, folder: Path, seconds: float) -> Path:
    """The first `seconds` of `clip` (video only), re-encoded at CRF 12 into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"{clip.stem}_{seconds:g}s.mp4"
    if dst.exists():
        return dst
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(clip)) as src, av.open(str(tmp), "w") as out:
        vin = src.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.options = {"crf": "12"}
        vout.time_base = vin.time_base
        for frame in src.decode(vin):
            if frame.time >= seconds:
                break
            out.mux(vout.encode(frame))
        out.mux(vout.encode())
    tmp.replace(dst)
    return dst


if __name__ == "__main__":
    main()
