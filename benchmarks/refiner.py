"""A per-person detail refiner after the decoder (issue 30 item 4), measured on a trained model.

An experiment, not part of `train` or `swap`: per side, a small residual CNN at the crop's size
takes the side's decoder output and is trained to give back the real face (the autoencoder
frozen), on the side's own training faces; the validation faces stay held out. Then:
- the held-out validation faces of the training recordings: L1, GMSD and face detail (evaluate's
  |Laplacian| inside the landmark hull, rebuild over real) of each side's own rebuild, with and
  without the refiner: where a variant is chosen;
- with --video: `evaluate --video` of the model as it is and with the chosen variant's refiners
  (their decoders wrapped, so swap, its occlusion rebuild and every figure use them), in one run
  of one code version.

The refiners are trained on top of the finished model: over `train`'s budget by 2 x --seconds,
an upper bound (what fails here cannot pass inside the budget).

    python benchmarks/refiner.py --model MODEL_DIR [--video CLIP] [--variants l1 gan]
                                 [--seconds 90] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facepair.evaluate import score
from facepair.evaluate.metrics import detail, face_region, gmsd
from facepair.evaluate.frames import run_model
from facepair.evaluate.report import figures
from facepair.model import store
from facepair.model.discriminator import PatchDiscriminator
from facepair.model.presets import TrainConfig, config_from_dict
from facepair.runtime import inference_autocast, to_images, to_tensor
from facepair.swap import pipeline
from facepair.training.data import load_side
from facepair.training.losses import make_loss, region_weights

KEYS = ["video_id_rate", "video_mouth_corr", "video_eyelid_corr", "video_landmark_error",
        "video_detail", "grid_a2b", "video_rec_ssim", "video_rec_gmsd", "video_skin_tone",
        "video_seam", "video_mottling", "video_kept", "frame_mouth_corr_b2a"]


class Refiner(nn.Module):
    """x + a 5-layer CNN of x (32 channels, 3x3, LeakyReLU 0.2); the last conv starts at zero, so
    an untrained refiner changes nothing."""

    def __init__(self, width: int = 32, depth: int = 5):
        super().__init__()
        layers, c = [], 3
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.LeakyReLU(0.2)]
            c = width
        last = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x):
        return x + self.net(x)


class Refined(nn.Module):
    """A decoder followed by its refiner (its output clamped first, as the refiner learnt it)."""

    def __init__(self, decoder, refiner):
        super().__init__()
        self.decoder, self.refiner = decoder, refiner

    def forward(self, code, history=None):
        return self.refiner(self.decoder(code, history).clamp(0, 1))


def train_refiner(inputs, targets, loss_fn, variant: str, seconds: float, seed: int = 0):
    """One side's refiner, trained for `seconds` on (rebuild, face) pairs flipped at random."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ref = Refiner()
    opt = torch.optim.Adam(ref.parameters(), 2e-4, betas=(0.5, 0.999))
    disc = opt_d = None
    if variant == "gan":
        disc = PatchDiscriminator()
        opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.5, 0.999))
    amp = torch.autocast("cpu", torch.bfloat16)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        idx = rng.integers(0, len(inputs), 16)
        x, y = to_tensor(inputs[idx]), to_tensor(targets[idx])
        if rng.random() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        with amp:
            out = ref(x)
        loss = loss_fn(out.float(), y)
        if disc is not None:
            with amp:
                score_f, feats = disc(out)
                with torch.no_grad():
                    _, real_feats = disc(y)
            loss = loss + 0.05 * ((score_f.float() - 1) ** 2).mean() \
                + sum(F.l1_loss(f.float(), r.float()) for f, r in zip(feats, real_feats))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if disc is not None:
            opt_d.zero_grad(set_to_none=True)
            with amp:
                real_s, _ = disc(y)
                fake_s, _ = disc(out.detach())
            d_loss = ((real_s.float() - 1) ** 2).mean() + (fake_s.float() ** 2).mean()
            d_loss.backward()
            opt_d.step()
        steps += 1
    return ref.eval().requires_grad_(False), steps


def refine(ref, images: np.ndarray) -> np.ndarray:
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        return np.concatenate([to_images(ref(to_tensor(images[k:k + 32]))) for k in range(0, len(images), 32)])


def held_out(real, rec, marks) -> dict:
    """L1 (grey levels), GMSD and detail ratio of rebuilds against the real faces."""
    det = [detail(r, face_region(m, r.shape)) / max(detail(f, face_region(m, f.shape)), 1e-6)
           for f, r, m in zip(real, rec, marks)]
    return {"l1": float(np.abs(real.astype(np.float32) - rec).mean()),
            "gmsd": float(np.mean([gmsd(f, r) for f, r in zip(real, rec)])),
            "detail": float(np.mean(det))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--video", type=Path, default=None, help="the recording to judge on")
    ap.add_argument("--variants", nargs="+", default=["l1", "gan"], choices=["l1", "gan"])
    ap.add_argument("--seconds", type=float, default=90.0, help="training time per side and variant")
    ap.add_argument("--out", type=Path, default=None, help="where the refined model copies go")
    ap.add_argument("--judge", choices=["l1", "gan"], default=None,
                    help="judge this variant on --video whatever the choice (a report)")
    args = ap.parse_args()
    if args.judge and args.judge not in args.variants:
        ap.error(f"--judge {args.judge} needs it among --variants")
    torch.set_num_threads(2)
    model, state = store.load_model(args.model, torch.device("cpu"))
    model.requires_grad_(False)
    tcfg = config_from_dict(TrainConfig, state["train_config"])
    faces = state["faces"]
    weights = region_weights(model.cfg.size, faces["padding"], tcfg.region_weight) \
        if tcfg.region_weight != 1 and faces.get("aligned", True) else None
    loss_fn = make_loss(tcfg.loss, tcfg.ssim_weight, weights, tcfg.edge_weight)
    amp = inference_autocast(torch.device("cpu"))
    data, refiners, table = {}, {v: {} for v in args.variants}, {}
    for side in "ab":
        s = load_side([fs["path"] for fs in state["facesets"][side]], model.cfg.size, tcfg,
                      val_files=state["validation"][side])
        cpu = torch.device("cpu")                  # each side's own rebuilds, as evaluate makes them
        data[side] = (s, run_model(model, s.train, s.marks, side, side, cpu, amp),
                      run_model(model, s.val, s.val_marks, side, side, cpu, amp))
        print(f"side {side}: {len(s.train)} training faces, {len(s.val)} held out")
        table[("none", side)] = held_out(s.val, data[side][2], s.val_marks)
        for v in args.variants:
            ref, steps = train_refiner(data[side][1], s.train, loss_fn, v, args.seconds)
            refiners[v][side] = ref
            table[(v, side)] = dict(held_out(s.val, refine(ref, data[side][2]), s.val_marks), steps=steps)
    print("\nheld-out validation faces of the training recordings, each side's own rebuild:")
    print("| variant | side | steps | L1 (grey) | GMSD | detail (rebuild / real) |\n| --- | --- | --- | --- | --- | --- |")
    for (v, side), f in table.items():
        print(f"| {v} | {side} | {f.get('steps', '')} | {f['l1']:.2f} | {f['gmsd']:.4f} | {f['detail']:.3f} |")
    # the choice (rule 7): the largest mean detail gain among variants whose GMSD does not rise
    ok = [v for v in args.variants if all(table[(v, s)]["gmsd"] <= table[("none", s)]["gmsd"] for s in "ab")]
    chosen = max(ok, key=lambda v: sum(table[(v, s)]["detail"] for s in "ab"), default=None)
    print(f"\nchosen: {chosen}" + (f"; judged: {args.judge} (a report)" if args.judge else ""))
    result = {"table": {f"{v}/{s}": f for (v, s), f in table.items()}, "chosen": chosen}
    chosen = args.judge or chosen
    if args.video is not None and chosen is not None:
        out = args.out or args.model.parent / f"{args.model.name}-refined"
        copies = {"none": out / "none", chosen: out / chosen}
        for name, folder in copies.items():          # fresh copies: no occlusion prior of the other
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(args.model, folder, ignore=shutil.ignore_patterns("occlusion-prior-*"))
        attach = {str(copies[chosen].resolve()): refiners[chosen]}
        plain = store.load_model

        def load_model(model_dir, device):
            m, st = plain(model_dir, device)
            refs = attach.get(str(Path(model_dir).resolve()))
            if refs:
                m.decoder_a, m.decoder_b = Refined(m.decoder_a, refs["a"]), Refined(m.decoder_b, refs["b"])
            return m, st
        score.load_model = pipeline.load_model = load_model
        figs = {}
        for name, folder in copies.items():
            figs[name] = figures(score.evaluate(folder, video=args.video))
            print(f"evaluated {name}", flush=True)
        print(f"\n{args.video.name}: evaluate --video, the model as it is -> with the '{chosen}' refiners")
        for k in KEYS:
            a, b = figs["none"][k], figs[chosen][k]
            print(f"{k:24s} {a:8.4f} -> {b:8.4f}  ({b - a:+.4f})")
        result["video"] = {k: {n: figs[n][k] for n in figs} for k in KEYS}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "refiner.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
