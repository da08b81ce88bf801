"""Occlusion maps learnt per person: an experiment, not used by `facepair swap`.

    python benchmarks/occlusion_learned.py --model MODEL_DIR --video HELD_OUT.mp4
                                           [--variant agree|compare|crop] [--steps 1500] [--frames 30]
                                           [--json FILE]

`--occlusion auto` finds what lies in front of a face where the face's rebuild by its own decoder
disagrees with it (swap/compose.py); on recordings the model never trained on it also takes
highlights, brows and the cheeks' edges for occluders (docs/results.md, "The occlusion map's
false faces"). This trains a small U-Net (16/32/64/64 channels, 64 x 64 input) on the model's
side-A training faces, with occluders pasted on them (shapes filled with a solid colour, noise,
patches of side B's faces, side B's skin recoloured to this face's) and the faces relit (gain,
gamma, light gradients, highlights, blur, noise), to mark the occluders within the face's hull:
- `crop`: from the face's crop alone (moved a little with its hull);
- `compare`: from the crop beside its rebuild by side A's decoder (the model's own rebuilds of
  its training faces; the crop moved against the rebuild by up to 3 px, 3 % and 3 degrees, the
  rebuild blurred at times), as the map it would replace is made;
- `agree` (the default): the `compare` network and swap's own map confirming each other: a
  region of swap's map (compose.occluders) is kept where the network marks some of it, and a
  region of the network's where swap's disagreement passes its low threshold somewhere in it.
Then benchmarks/occlusion.py's figures (its `run` and `table`; occluder kept, face swapped, ID)
with the network's map, thresholded at 0.5, dilated and softened as compose.occlusion's, in
place of compose.occlusion: the `auto` column is the network's. Its occluder rows are flattered:
the benchmark pastes the kinds of occluders the network trained on; the clean row is not.
About 3.5 minutes of training per 1,500 steps on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import occlusion as bench                                      # noqa: E402  (benchmarks/occlusion.py)

from facepair.faces import align                               # noqa: E402
from facepair.faces.faceset import load_index                  # noqa: E402
from facepair.media.image import read_image                    # noqa: E402
from facepair.model.store import read_state                    # noqa: E402
from facepair.swap import compose                              # noqa: E402
from facepair.swap.options import SwapOptions                  # noqa: E402
from facepair.swap.pipeline import Swapper                     # noqa: E402

S = 64          # the network's input and output size


class Net(nn.Module):
    """A small U-Net: occluder logits (N, S, S) from (N, cin, S, S) in [0, 1]."""
    def __init__(self, cin: int = 3, c=(16, 32, 64, 64)):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                                 nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))
        self.down = nn.ModuleList([block(cin, c[0]), block(c[0], c[1]), block(c[1], c[2]), block(c[2], c[3])])
        self.up = nn.ModuleList([block(c[3] + c[2], c[2]), block(c[2] + c[1], c[1]), block(c[1] + c[0], c[0])])
        self.out = nn.Conv2d(c[0], 1, 1)

    def forward(self, x):
        skips = []
        for i, b in enumerate(self.down):
            x = b(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for b, skip in zip(self.up, reversed(skips[:-1])):
            x = b(torch.cat([F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), skip], 1))
        return self.out(x)[:, 0]


def faces_of(model: Path, side: str) -> list[tuple]:
    """The side's training faces: (crop uint8 RGB, landmarks in crop space, hull uint8)."""
    out = []
    for fs in read_state(model)["facesets"][side]:
        folder = Path(fs["path"])
        for e in load_index(folder)["faces"]:
            crop = read_image(folder / e["file"])
            marks = align.map_points(np.array(e["transform"], float), np.array(e["landmarks"], float))
            hull = np.zeros(crop.shape[:2], np.uint8)
            cv2.fillConvexPoly(hull, cv2.convexHull(np.round(marks).astype(np.int32)), 1)
            out.append((crop, marks, hull))
    return out


def shape(rng, size: int) -> np.ndarray:
    """A random occluder shape (uint8 0/1, size x size): ellipse, box, bar or polygon."""
    m = np.zeros((size, size), np.uint8)
    c = rng.uniform(0.2, 0.8, 2) * size
    sc = rng.uniform(0.2, 0.5) * size * 0.7
    kind, angle = rng.integers(4), rng.uniform(0, 180)
    if kind == 0:
        cv2.ellipse(m, tuple(int(v) for v in c), (int(sc * rng.uniform(.3, .6)), int(sc * rng.uniform(.2, .5))),
                    angle, 0, 360, 1, -1)
    elif kind == 1:
        box = cv2.boxPoints(((c[0], c[1]), (sc * rng.uniform(.5, 1), sc * rng.uniform(.3, .8)), angle))
        cv2.fillPoly(m, [np.round(box).astype(np.int32)], 1)
    elif kind == 2:
        d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))]) * sc * rng.uniform(.5, 1.2)
        cv2.line(m, tuple(np.round(c - d).astype(int)), tuple(np.round(c + d).astype(int)), 1,
                 max(2, int(sc * rng.uniform(.1, .3))))
    else:
        t, r = np.sort(rng.uniform(0, 2 * np.pi, 9)), sc * rng.uniform(.25, .65, 9)
        cv2.fillPoly(m, [np.round(c + np.stack([np.cos(t) * r, np.sin(t) * r], 1)).astype(np.int32)], 1)
    return m


def sample(rng, crop: np.ndarray, hull: np.ndarray, others: list, move: bool = True) -> tuple:
    """One training example from a face: (image (S, S, 3) in [0, 1], label (S, S), hull (S, S)):
    moved a little with its hull (`move`), relit, an occluder pasted on 70 % of them."""
    im, hull = crop.astype(np.float32), hull.astype(np.float32)
    size = im.shape[0]
    if move:
        m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-6, 6), rng.uniform(0.94, 1.06))
        m[:, 2] += rng.uniform(-5, 5, 2)
        im = cv2.warpAffine(im, m, (size, size), borderMode=cv2.BORDER_REFLECT)
        hull = cv2.warpAffine(hull, m, (size, size))
    hull = hull > 0.5
    im = np.clip(im / 255 * rng.uniform(0.8, 1.2, 3)[None, None], 0, 1) ** rng.uniform(0.7, 1.4)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    g = rng.normal(size=2) * 0.3
    im = im * (1 + g[0] * xx + g[1] * yy)[..., None]                        # a light gradient
    for _ in range(rng.integers(3)):                                         # highlights
        cx, cy = rng.uniform(-0.3, 0.3, 2)
        s = rng.uniform(0.03, 0.12)
        im = im + rng.uniform(0.05, 0.35) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))[..., None]
    im = np.clip(im, 0, 1) * 255
    label = np.zeros((size, size), np.float32)
    if rng.random() < 0.7:
        m = shape(rng, size).astype(np.float32)
        kind = rng.integers(4)
        if kind == 0:                                                        # solid
            paint = np.empty_like(im)
            paint[:] = rng.uniform(0, 255, 3)
        elif kind == 1:                                                      # noise
            p = rng.uniform(0, 255, 3) + rng.normal(0, rng.uniform(5, 40), (size, size, 3))
            paint = cv2.GaussianBlur(p.astype(np.float32), (0, 0), rng.uniform(0.5, 4))
        elif kind == 2:                                                      # another face
            o = others[rng.integers(len(others))].astype(np.float32)
            paint = np.roll(o, tuple(rng.integers(-40, 40, 2)), (0, 1))
        else:                                       # another face's skin in this face's colour
            o = others[rng.integers(len(others))].astype(np.float32)
            patch = cv2.resize(o[60:90, 20:50], (size, size))
            skin = im[hull].mean(0) if hull.any() else im.reshape(-1, 3).mean(0)
            paint = patch - patch.reshape(-1, 3).mean(0) + skin * rng.uniform(0.85, 1.15)
        a = cv2.GaussianBlur(m, (0, 0), 0.8)[..., None]
        im = np.clip(paint, 0, 255) * a + im * (1 - a)
        label = (m > 0.5) & hull
    im = cv2.GaussianBlur(im, (0, 0), rng.uniform(0.3, 1.2)) + rng.normal(0, rng.uniform(0, 4), im.shape)
    im = cv2.resize(np.clip(im, 0, 255).astype(np.float32), (S, S), interpolation=cv2.INTER_AREA)
    return (im / 255, cv2.resize(label.astype(np.float32), (S, S), interpolation=cv2.INTER_AREA),
            cv2.resize(hull.astype(np.float32), (S, S), interpolation=cv2.INTER_AREA))


def sample_compare(rng, crop, hull, rebuilt, others) -> tuple:
    """`compare`: the crop moved against its rebuild (3 px, 3 %, 3 degrees), relit and
    occluded as `sample`; the rebuild blurred at times -> ((S, S, 6), label, hull)."""
    rb = rebuilt.astype(np.float32)
    if rng.random() < 0.5:
        rb = cv2.GaussianBlur(rb, (0, 0), rng.uniform(0.3, 1.5))
    size = rb.shape[0]
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-3, 3), rng.uniform(0.97, 1.03))
    m[:, 2] += rng.uniform(-3, 3, 2)
    moved = cv2.warpAffine(crop, m, (size, size), borderMode=cv2.BORDER_REFLECT)
    x, label, h = sample(np.random.default_rng(rng.integers(1 << 30)), moved, hull, others, move=False)
    return np.concatenate([x, cv2.resize(rb, (S, S), interpolation=cv2.INTER_AREA) / 255], -1), label, h


def rebuilds(swapper: Swapper, faces: list) -> list[np.ndarray]:
    """Side A's faces rebuilt by side A's decoder (uint8 crops)."""
    fm, out = swapper.models[0], []
    for k in range(0, len(faces), 16):
        jobs = [(0, None, crop, None, marks, 0) for crop, marks, _ in faces[k:k + 16]]
        _, rebuilt = fm.forward(jobs, None, range(len(jobs)))
        out += [rebuilt[i] for i in range(len(jobs))]
    return out


def train(model: Path, variant: str, steps: int, batch: int = 32) -> Net:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    faces, others = faces_of(model, "a"), [f[0] for f in faces_of(model, "b")]
    rebuilt = rebuilds(Swapper(model, SwapOptions(occlusion="auto", progress=False)), faces) \
        if variant != "crop" else None
    net = Net(cin=3 if variant == "crop" else 6)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    t = time.perf_counter()
    for step in range(steps):
        got = []
        for _ in range(batch):
            i = rng.integers(len(faces))
            crop, _, hull = faces[i]
            got.append(sample_compare(rng, crop, hull, rebuilt[i], others) if rebuilt is not None
                       else sample(rng, crop, hull, others))
        xs, ys, hs = zip(*got)
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float()
        y, h = torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(hs))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logit = net(x)
        # the face counts fully, the rest of the crop a tenth
        loss = (F.binary_cross_entropy_with_logits(logit.float(), y, reduction="none") * (0.1 + h)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == steps - 1:
            print(f"  step {step}: loss {float(loss.detach()):.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
    return net.eval()


def learned_map(net: Net, variant: str):
    """A stand-in for compose.occlusion. crop, compare: the network's map in crop space,
    thresholded at 0.5, limited to the hull, dilated and softened as compose.occlusion's;
    nothing where it covers more than compose.MOST of the face. agree: see the module's help."""
    def probability(crop, rebuilt, shape):
        ims = (crop,) if variant == "crop" else (crop, rebuilt)
        x = np.concatenate([cv2.resize(im, (S, S), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
                            for im in ims], -1)
        with torch.no_grad():
            p = torch.sigmoid(net(torch.from_numpy(x).permute(2, 0, 1)[None]))[0].numpy()
        return cv2.resize(p, shape[::-1], interpolation=cv2.INTER_LINEAR)

    def occlusion(crop, rebuilt, hull, prior=None, **_):
        size = crop.shape[0]
        if variant != "agree":
            occ = (probability(crop, rebuilt, hull.shape) > 0.5).astype(np.uint8)
            occ[hull <= 0] = 0
            if not occ.any() or occ.sum() > compose.MOST * (hull > 0.5).sum():
                return np.zeros(hull.shape, np.float32)
            g = max(1, int(round(2.0 * size / 128)))
            occ = cv2.dilate(occ, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1,) * 2))
            occ = cv2.GaussianBlur(occ.astype(np.float32), (0, 0), g / 2)
            return np.minimum(occ * 1.5, 1.0).astype(np.float32)
        found = compose.occluders(crop, rebuilt, hull, prior)
        if found is None:
            return np.zeros(hull.shape, np.float32)
        ours, weak, inside = found                          # half size
        learned = (probability(crop, rebuilt, inside.shape) > 0.5) & inside
        n, labels = cv2.connectedComponents(ours.astype(np.uint8), connectivity=8)
        confirmed = np.zeros(n, bool)
        confirmed[np.unique(labels[learned])] = True
        confirmed[0] = False
        m, theirs = cv2.connectedComponents(learned.astype(np.uint8), connectivity=8)
        backed = np.zeros(m, bool)
        backed[np.unique(theirs[weak])] = True
        backed[0] = False
        return compose.soften(confirmed[labels] | backed[theirs], inside, hull)
    return occlusion


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--video", type=Path, required=True, help="a recording of side A")
    ap.add_argument("--variant", choices=("agree", "compare", "crop"), default="agree")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    t = time.perf_counter()
    print(f"training the {args.variant} network on {args.model}'s side A, {args.steps} steps:", flush=True)
    net = train(args.model, args.variant, args.steps)
    print(f"trained in {time.perf_counter() - t:.0f} s", flush=True)
    compose.occlusion = learned_map(net, args.variant)          # what swap's pipeline calls
    rows = bench.run(args.model, args.video, args.frames, args.seed, False)
    print(f"{args.model} on {args.video.name}, --occlusion auto with the {args.variant} network's map:")
    print(bench.table(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"variant": args.variant, "steps": args.steps, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
