"""Occlusion: what `facepair swap --occlusion none|auto` does with things in front of the face.

    python benchmarks/occlusion.py --model MODEL_DIR --video HELD_OUT.mp4 [--frames 30]
                                   [--mic] [--speed SECONDS] [--json FILE]
                                   [--map-model MODEL_DIR --map-video VIDEO [--map-frames 120]]

Held-out frames (evenly spread over --video, a recording the model never trained on) each get a
synthetic occluder pasted over the lower face, a cheek or an eye (in turn), in turn an ellipse, a
rotated box, a bar (a finger, a microphone's boom) or a hand-like polygon, each filled three ways:
a solid colour, a texture (a patch cut from another video, as XSeg's training pastes), and a
skin colour (the face's own, shaded: the hard case). `--mic` adds the real microphone of
feifeili_clip1 (a skin-coloured ball on the cheek, outlined by hand in MIC below; a *training*
clip of the Fei-Fei Li / Andrew Ng pair: the row says whether this model trained on it). Each
frame goes through swap's pipeline (as a still) with each --occlusion, and per kind of occluder
the figures are:
- occluder kept: the share of the occluder's pixels inside the face's landmark hull that come
  out as they went in (every channel within KEPT grey levels), target >= 90 %;
- face swapped: the share of the face's unoccluded pixels (where --occlusion none pastes the
  face fully, away from the occluder by MARGIN of the face's width) that --occlusion auto still
  pastes at least half-way, target >= 95 % (the mask must not eat the face); also on the same
  frames without occluders ("clean");
- ID: dlib's embedding of the swapped frame nearer the target's training faces than the
  source's, and within 0.5 of them (evaluate's id_rate), with each --occlusion; for auto, of the
  swapped part (the occluder and MARGIN around it taken from the none swap, so that what is kept
  in front of the face does not hide it from dlib) and of the output as it is.
`--speed S` swaps the first S seconds of --speed-video (default --video) as `facepair swap` does
(in process, end to end), with --occlusion none and auto in turn, 3 rounds, per engine (both, or
--engine), and prints frames/s and the ratio.
`--map-model` adds the mapping table (issue 32): --video's person and --map-video's side by side
in one video, their sides exchanged half way, swapped in one pass with `--map` (each person's
reference: their model's training faces), and per person the share of frames where they got their
own model's face (compared with each model's swap of the whole video) and the swaps between them.
The settings of compose.occlusion were chosen on training clips (obama_clip1, feifeili_clip2):
judge on recordings the model never trained on.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from facepair.evaluate.frames import training_means
from facepair.evaluate.metrics import id_figures
from facepair.faces.detect import make_detector
from facepair.faces.faceset import load_index
from facepair.faces.identity import Embedder
from facepair.faces.landmarks import Landmarker
from facepair.media.video import iter_video, video_info
from facepair.model.store import read_state
from facepair.swap import compose
from facepair.swap.options import SwapOptions
from facepair.swap.pipeline import SwapSummary, Swapper, swap

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
KEPT = 12              # grey levels: an occluder pixel within this of the input in every channel is kept
MARGIN = 0.04          # of the face's width: the unoccluded face starts this far from the occluder
PLACES = ("lower face", "cheek", "eye")
SHAPES = ("ellipse", "box", "bar", "hand")
FILLS = ("solid", "texture", "skin")
# the microphone of feifeili_clip1 (its ball; the wire left out), outlined by hand on frames
# zoomed 6x: frame -> (centre x, centre y, half-width, half-height), frame px (256 x 256)
MIC = {0: (84, 187, 8.5, 7), 40: (62, 177.5, 9.5, 7.5), 80: (76, 178.5, 9.5, 7.5),
       120: (59, 178, 8.5, 8.5), 160: (66.5, 175.5, 8, 8), 200: (69.5, 180, 9, 8.5),
       240: (81, 169, 9, 8), 280: (89, 169.5, 8.5, 8.5)}


# -- occluders -------------------------------------------------------------------------------
def shape_mask(h: int, w: int, shape: str, centre, scale: float, rng) -> np.ndarray:
    """A uint8 (h, w) mask of one occluder shape at `centre`, `scale` px across (about)."""
    m = np.zeros((h, w), np.uint8)
    c = np.asarray(centre, float)
    angle = rng.uniform(0, 180)
    if shape == "ellipse":
        axes = (int(scale * rng.uniform(0.4, 0.6)), int(scale * rng.uniform(0.3, 0.45)))
        cv2.ellipse(m, tuple(int(v) for v in c), axes, angle, 0, 360, 255, -1)
    elif shape == "box":
        box = cv2.boxPoints(((c[0], c[1]), (scale * rng.uniform(0.7, 1.0), scale * rng.uniform(0.5, 0.8)), angle))
        cv2.fillPoly(m, [np.round(box).astype(np.int32)], 255)
    elif shape == "bar":
        d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))]) * scale * 0.8
        cv2.line(m, tuple(np.round(c - d).astype(int)), tuple(np.round(c + d).astype(int)), 255,
                 max(2, int(scale * rng.uniform(0.18, 0.28))))
    else:                                # a hand-like polygon: uneven radii around the centre
        t = np.sort(rng.uniform(0, 2 * np.pi, 9))
        r = scale * rng.uniform(0.3, 0.65, 9)
        pts = c + np.stack([np.cos(t) * r, np.sin(t) * r], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    return m


def place(marks: np.ndarray, where: str, rng) -> np.ndarray:
    """Where on the face an occluder goes (frame px), from the 68 landmarks."""
    side = rng.integers(2)
    if where == "lower face":
        c = marks[48:68].mean(0) + [0, rng.uniform(-0.05, 0.15) * np.ptp(marks[:, 1])]
    elif where == "cheek":
        c = 0.5 * marks[[3, 13][side]] + 0.5 * marks[[31, 35][side]]
    else:
        c = marks[[36, 42][side]:[42, 48][side]].mean(0)
    return c


def fill(frame: np.ndarray, mask: np.ndarray, kind: str, marks: np.ndarray, textures: list, rng) -> np.ndarray:
    """`frame` with the occluder `mask` pasted in (a 1 px soft edge), filled as `kind`."""
    h, w = mask.shape
    if kind == "solid":
        colour = rng.choice([[20, 20, 20], [235, 235, 235], [200, 30, 30], [30, 60, 200],
                             [40, 160, 60], [230, 200, 40], [120, 70, 30]])
        paint = np.empty((h, w, 3), np.float32)
        paint[:] = np.asarray(colour, np.float32) + rng.normal(0, 4, 3)
    elif kind == "texture":
        tex = textures[rng.integers(len(textures))]
        th, tw = tex.shape[:2]
        if th < h or tw < w:                     # a frame larger than the textures (the 720p address)
            th, tw = max(th, h), max(tw, w)
            tex = cv2.resize(tex, (tw, th), interpolation=cv2.INTER_LINEAR)
        y, x = rng.integers(0, th - h + 1), rng.integers(0, tw - w + 1)
        paint = tex[y:y + h, x:x + w].astype(np.float32)
    else:                     # skin: the face's own cheek colour, lit from one side (the hard case)
        cheek = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(cheek, np.round(marks[[1, 2, 3, 31, 30, 35, 13, 14, 15]]).astype(np.int32), 1)
        colour = frame[cheek > 0].mean(0) * rng.uniform(0.9, 1.1)
        ys, xs = np.nonzero(mask)
        g = np.zeros((h, w), np.float32)
        if len(xs):
            d = rng.normal(size=2)
            g = ((np.arange(w)[None] - xs.mean()) * d[0] + (np.arange(h)[:, None] - ys.mean()) * d[1])
            g = g / (np.abs(g[mask > 0]).max() + 1e-6)
        paint = colour[None, None] * (1 + 0.12 * g[..., None]) + rng.normal(0, 3, (h, w, 3))
    a = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 0.7)[..., None]
    return (paint.clip(0, 255) * a + frame * (1 - a)).round().astype(np.uint8)


def textures_from(video: Path, n: int = 6) -> list:
    """Whole frames of another video to cut texture patches from."""
    frames = [f for _, f in iter_video(video, only=set(range(0, 1000, 1000 // n)))]
    return [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames]


def mic_mask(shape, n: int) -> np.ndarray:
    """The microphone's ball in frame `n` of feifeili_clip1, a uint8 mask (255: microphone)."""
    cx, cy, rx, ry = MIC[n]
    m = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(m, (int(round(cx * 4)), int(round(cy * 4))), (int(round(rx * 4)), int(round(ry * 4))),
                0, 0, 360, 255, -1, cv2.LINE_8, 2)          # quarter-pixel precision
    return m


# -- measuring -------------------------------------------------------------------------------
def frame_alpha(swapper: Swapper, frame: np.ndarray, occlusion: bool) -> np.ndarray | None:
    """How much of the swapped face swap pastes at each pixel of `frame` (0..1), one face."""
    summary = SwapSummary()
    jobs = swapper.find([frame], 0, summary)
    if not jobs:
        return None
    fm = swapper.models[0]
    _, rebuilt = fm.forward(jobs[:1], None, [0] if occlusion else ())
    mask = swapper.mask(jobs[0], fm.size, rebuilt.get(0))
    out = np.zeros(frame.shape, np.uint8)
    compose.paste(out, np.full((fm.size, fm.size, 3), 255, np.uint8), mask, jobs[0][1])
    return out[..., 0] / 255.0


def hull_of(marks: np.ndarray, shape) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(marks).astype(np.int32)), 1)
    return m > 0


def measure(swappers: dict, frame: np.ndarray, occ: np.ndarray | None, marks: np.ndarray,
            emb: Embedder, means: dict, source: str, target: str) -> dict:
    """One frame (with its occluder pasted; `occ` its pixels, None: clean) through each swapper
    -> {mode: (occluder pixels kept, unoccluded face pixels swapped, ID)}; each a pair (count
    meeting, count) or None."""
    hull = hull_of(marks, frame.shape)
    width = np.ptp(marks[:, 0])
    if occ is not None:
        r = max(1, int(round(MARGIN * width)))
        near = cv2.dilate(occ.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
        occ = occ & hull
    else:
        near = np.zeros(hull.shape, bool)
    full = frame_alpha(swappers["none"], frame, False)
    res, outs = {}, {}
    for mode, sw in swappers.items():
        out = frame.copy()
        summary = SwapSummary()
        sw.process([out], 0, False, summary)
        if not summary.faces_swapped:
            res[mode] = None
            continue
        outs[mode] = out
        alpha = frame_alpha(sw, frame, mode == "auto")
        face = (full >= 0.99) & ~near & hull if full is not None else hull & ~near
        kept = None
        if occ is not None and occ.any():
            same = (np.abs(out.astype(int) - frame).max(-1) <= KEPT)
            kept = (int((same & occ).sum()), int(occ.sum()))
        swapped = (int(((alpha >= 0.5) & face).sum()), int(face.sum()))
        # the identity of the swapped part: the occluder's own pixels (dilated by MARGIN) from the
        # swap with --occlusion none, so that what is kept in front of the face does not hide it
        # from dlib; and of the output as it is ("as is")
        part = out if mode == "none" or "none" not in outs else np.where(near[..., None], outs["none"], out)
        ok = [id_figures(emb.from_landmarks(im, marks)[None], means[target], means[source])["id_rate"]
              for im in (part, out)]
        res[mode] = (kept, swapped, ok)
    return res


def run(model: Path, video: Path, frames: int, seed: int, mic: bool, engine: str | None = None) -> dict:
    """Every figure of one model on one held-out video (and the microphone) -> {row: {mode: figures}}."""
    rng = np.random.default_rng(seed)
    state = read_state(model)
    source, target = "a", "b"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        swappers = {m: Swapper(model, SwapOptions(occlusion=m, engine=engine, progress=False))
                    for m in ("none", "auto")}
    det, lm, emb = make_detector("hog"), Landmarker(), Embedder()
    means = training_means(state, emb, faces=32)["frames"]
    textures = textures_from(DATA / "video/obama_weekly_address_720p.mp4") + \
        textures_from(DATA / "faces/andrew/andrew_clip2.mp4", 3)
    n_frames = video_info(video)["frames"]
    wanted = set(np.linspace(0, n_frames - 1, frames).round().astype(int).tolist())
    rows: dict = {}

    def add(row, got):
        acc = rows.setdefault(row, {})
        for mode, r in got.items():
            a = acc.setdefault(mode, {"kept": [0, 0], "swapped": [0, 0], "id": [], "id_as_is": [],
                                      "failed": 0})
            if r is None:
                a["failed"] += 1
                continue
            kept, swapped, ok = r
            if kept:
                a["kept"][0] += kept[0]
                a["kept"][1] += kept[1]
            a["swapped"][0] += swapped[0]
            a["swapped"][1] += swapped[1]
            a["id"].append(ok[0])
            a["id_as_is"].append(ok[1])

    k = 0
    for n, frame in iter_video(video, only=wanted):
        boxes = det(frame)
        if not boxes:
            continue
        marks = lm(frame, boxes[0])
        add("clean", measure(swappers, frame, None, marks, emb, means, source, target))
        for kind in FILLS:
            shape, where = SHAPES[k % len(SHAPES)], PLACES[(k // len(SHAPES) + FILLS.index(kind)) % len(PLACES)]
            scale = np.ptp(marks[:, 0]) * rng.uniform(0.3, 0.45)
            m = shape_mask(*frame.shape[:2], shape, place(marks, where, rng), scale, rng)
            occluded = fill(frame, m, kind, marks, textures, rng)
            add(kind, measure(swappers, occluded, m > 127, marks, emb, means, source, target))
        k += 1
    if mic:
        clip = DATA / "faces/feifeili/feifeili_clip1.mp4"
        sources = {Path(e["source"]).name for fs in state["facesets"]["a"]
                   for e in load_index(Path(fs["path"]))["faces"]}
        seen = "trained on" if clip.name in sources else "never trained on"
        for n, frame in iter_video(clip, only=set(MIC)):
            boxes = det(frame)
            if not boxes:
                continue
            m = mic_mask(frame.shape, n)
            add(f"microphone ({seen})", measure(swappers, frame, m > 127, lm(frame, boxes[0]),
                                                      emb, means, source, target))
    return rows


def speed(model: Path, video: Path, seconds: float, rounds: int = 3, engines=("torch", "onnx")) -> dict:
    """frames/s of swap (in process, end to end: decode, swap, watermark, encode) on the first
    `seconds` of `video`: {engine: {occlusion: median}}, every setting in turn each round."""
    got = {(e, m): [] for e in engines for m in ("none", "auto")}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for engine, mode in got:
                s = swap(video, model, Path(tmp) / "out.mp4", SwapOptions(
                    occlusion=mode, duration=seconds, engine=engine, progress=False))
                got[engine, mode].append(s.fps)
    out: dict = {}
    for (engine, mode), v in got.items():
        out.setdefault(engine, {})[mode] = statistics.median(v)
    return out


def table(rows: dict) -> str:
    def pct(p):
        return f"{100 * p[0] / p[1]:5.1f} %" if p[1] else "    -  "
    def share(v):
        return f"{100 * np.mean(v):5.1f} %" if v else "    -  "
    lines = [f"{'occluders':30s} {'frames':>6s} | {'occluder kept':>15s} | {'face swapped':>15s} | "
             f"{'ID (swapped part / as is)':>25s}",
             f"{'':30s} {'':6s} | {'none':>7s} {'auto':>7s} | {'none':>7s} {'auto':>7s} | "
             f"{'none':>7s} {'auto':>7s} {'as is':>9s}"]
    for row, modes in rows.items():
        a, b = modes["none"], modes["auto"]
        lines.append(f"{row:30s} {len(b['id']):6d} | {pct(a['kept'])} {pct(b['kept'])} | "
                     f"{pct(a['swapped'])} {pct(b['swapped'])} | {share(a['id'])} {share(b['id'])} "
                     f"{share(b['id_as_is']):>9s}")
    return "\n".join(lines)


def mapping(models: list[Path], videos: list[Path], frames: int) -> dict:
    """`swap --map`: two people side by side (each person's `videos`, their sides exchanged half
    way), each mapped to their own model by their training faces (its A side's face sets) ->
    per person the share of frames where their half came out as their own model swaps it
    (nearer it than the other model's swap by half and well away from the source), and the
    swaps between them (a face that came out as the other model's)."""
    import av
    clips = [[f for _, f in zip(range(frames), (f for _, f in iter_video(v)))] for v in videos]
    n, turn = min(map(len, clips)), min(map(len, clips)) // 2
    h = min(c[0].shape[0] for c in clips)
    clips = [[cv2.resize(f, (round(f.shape[1] * h / f.shape[0]) // 2 * 2, h)) for f in c[:n]] for c in clips]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pair = tmp / "pair.mp4"
        with av.open(str(pair), "w") as c:
            s = c.add_stream("libx264", rate=30)
            s.height, s.width, s.pix_fmt = h, clips[0][0].shape[1] + clips[1][0].shape[1], "yuv420p"
            for k in range(n):
                left, right = (clips[0][k], clips[1][k]) if k < turn else (clips[1][k], clips[0][k])
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(np.concatenate([left, right], 1)),
                                                             format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        refs = [read_state(m)["facesets"]["a"][0]["path"] for m in models]
        maps = [(ref, str(m)) for ref, m in zip(refs, models)]
        summary = swap(pair, None, tmp / "mapped.mp4", SwapOptions(maps=maps, progress=False))
        alone = [[f for _, f in iter_video(swap(pair, m, tmp / f"{j}.mp4", SwapOptions(progress=False)).output)]
                 for j, m in enumerate(models)]
        mapped, source = [f for _, f in iter_video(tmp / "mapped.mp4")], [f for _, f in iter_video(pair)]
    widths = [clips[0][0].shape[1], clips[1][0].shape[1]]
    right, wrong, cross = [0, 0], [0, 0], [0, 0]
    for k, (out, src) in enumerate(zip(mapped, source)):
        split = widths[0] if k < turn else widths[1]
        for person in (0, 1):
            left_side = (person == 0) == (k < turn)
            cut = (slice(None), slice(0, split) if left_side else slice(split, None))
            o, s_ = out[cut].astype(np.float32), src[cut].astype(np.float32)
            own = np.abs(o - alone[person][k][cut]).mean()
            other = np.abs(o - alone[1 - person][k][cut]).mean()
            if own < 0.5 * other and np.abs(o - s_).mean() > 2 * own:
                right[person] += 1
            else:
                wrong[person] += 1
                cross[person] += other < 0.5 * own
    return {"frames": len(mapped), "right": right, "wrong": wrong, "swaps_between": cross,
            "faces_per_entry": summary.faces_per_entry, "unmatched": summary.faces_unmatched,
            "ambiguous": summary.faces_ambiguous, "people": [Path(v).name for v in videos]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--video", type=Path, required=True, help="held-out recording of side A")
    ap.add_argument("--frames", type=int, default=30, help="held-out frames with occluders (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mic", action="store_true", help="also the microphone of feifeili_clip1")
    ap.add_argument("--engine", choices=("torch", "onnx"))
    ap.add_argument("--speed", type=float, default=0, metavar="SECONDS",
                    help="also swap the first SECONDS of --speed-video with each --occlusion")
    ap.add_argument("--speed-video", type=Path, help="default: --video")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--map-model", type=Path, help="and the mapping table: a model of another person "
                    "(its side A), swapped beside --model's in one video with --map")
    ap.add_argument("--map-video", type=Path, help="a recording of --map-model's side A")
    ap.add_argument("--map-frames", type=int, default=120)
    args = ap.parse_args()
    t = time.perf_counter()
    out = {}
    if args.frames:                                     # --frames 0: the other tables alone
        out["rows"] = rows = run(args.model, args.video, args.frames, args.seed, args.mic, args.engine)
        print(f"{args.model} on {args.video.name} ({time.perf_counter() - t:.0f} s):")
        print(table(rows), flush=True)
    if args.speed:
        video = args.speed_video or args.video
        fps = speed(args.model, video, args.speed, engines=(args.engine,) if args.engine else ("torch", "onnx"))
        out["fps"] = fps
        print(f"swap speed, first {args.speed:g} s of {video.name}, end to end, medians of 3 rounds in turn:")
        for engine, f in fps.items():
            print(f"  --engine {engine}: --occlusion none {f['none']:.1f} frames/s, auto {f['auto']:.1f} "
                  f"frames/s ({f['auto'] / f['none']:.2f}x)", flush=True)
    if args.map_model:
        m = mapping([args.model, args.map_model], [args.video, args.map_video], args.map_frames)
        out["mapping"] = m
        print(f"swap --map, {m['frames']} frames, two people side by side, sides exchanged half way "
              f"(faces per entry {m['faces_per_entry']}, unmatched {m['unmatched']}, ambiguous {m['ambiguous']}):")
        for j, name in enumerate(m["people"]):
            print(f"  {name:24s} own model's face in {m['right'][j]} of {m['frames']} frames "
                  f"({m['right'][j] / max(m['frames'], 1):.0%}); the other model's: {m['swaps_between'][j]}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
