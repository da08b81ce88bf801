"""`facepair evaluate`: numbers a user can trust about a trained pair.

- Reconstruction per side (A->A, B->B): L1, PSNR, SSIM (scikit-image).
- Identity of swaps: dlib 128-d embeddings of real A, real B, A->B and B->A, each computed on the
  64 px crop upscaled to dlib's 150 px chip, the same way for real and swapped faces. ID retrieval
  rate = share of A->B swaps nearer B's mean embedding than A's (and the reverse); the same rates
  for real faces are the sanity check (near 100 %).
- Expression/pose fidelity: 68 landmarks predicted on each source crop and on its swap (same box,
  from the face set's detector box), their mean distance over the inter-ocular distance; and the
  correlation across faces of the mouth opening (inner-lip gap / inter-ocular distance) in the
  source and in its swap. A decoder that outputs one average face scores ~0 here.
- A model with a landmark cue is fed each crop's stored landmarks (those `swap` would align it
  with), centred as measured after training (evaluate/calibrate.py, as `swap` does); the
  landmarks measured on its output are predicted afresh, as for every model.
- Whole frames: each held-out face's source frame swapped by the real pipeline (`swap`), then
  ID retrieval, landmark error and mouth-opening correlation measured on the output frame at its
  own resolution (keys `frame_*`); the source side uses the face set's stored landmarks.
- Video (optional): temporal flicker of the swapped face region vs the source's.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

from ..errors import FacepairError
from ..faces import align
from ..faces.faceset import load_index
from ..faces.identity import Embedder
from ..faces.landmarks import Landmarker
from ..media import is_image, iter_video, read_image
from ..swap.pipeline import SwapOptions, SwapSummary, Swapper, load_model, swap
from ..training.data import crop_marks
from ..training.loop import cpu_has_bf16, resolve_device

UPSCALE = 4                  # landmarks are predicted on crops upscaled 4x (64 -> 256 px)


def _faces(folders, files=None, max_faces=128):
    """(crops uint8 (N,S,S,3), boxes in crop coordinates (N,4), face-set entries) from face sets,
    optionally only the listed files ("<faceset>/faces/NNNNNN.png"), evenly thinned to max_faces."""
    wanted = None
    if files:
        wanted = {}
        for f in files:
            folder, name = f.rsplit("/faces/", 1)
            wanted.setdefault(folder, set()).add("faces/" + name)
        folders = list(wanted)
    crops, boxes, where = [], [], []
    for folder in folders:
        meta = load_index(Path(folder))
        for e in meta["faces"]:
            if wanted is not None and e["file"] not in wanted[folder]:
                continue
            x0, y0, x1, y1 = e["bbox"]
            corners = align.apply(np.array(e["transform"]), np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
            crops.append(read_image(Path(folder) / e["file"]))
            boxes.append([*corners.min(0), *corners.max(0)])
            where.append(e)
    if not crops:
        raise FacepairError("no faces to evaluate (face sets empty or validation faces missing)")
    keep = np.linspace(0, len(crops) - 1, min(max_faces, len(crops))).round().astype(int)
    return (np.stack([crops[i] for i in keep]), np.array([boxes[i] for i in keep]),
            [where[i] for i in keep])


def _run(model, faces: np.ndarray, marks: np.ndarray, source: str, to: str, device, amp) -> np.ndarray:
    """Faces of side `source` (and their landmarks in the crops) through the decoder of `to`."""
    out = []
    with torch.no_grad(), amp:
        for i in range(0, len(faces), 64):
            x = torch.from_numpy(faces[i:i + 64]).permute(0, 3, 1, 2).float().div(255)
            y = model.swap(x.to(device, memory_format=torch.channels_last), to, marks[i:i + 64], source)
            out.append((y.float().permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8))
    return np.concatenate(out)


def reconstruction(real: np.ndarray, rec: np.ndarray) -> dict:
    a, b = real.astype(np.float64) / 255, rec.astype(np.float64) / 255
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    return {"l1": float(np.abs(a - b).mean()),
            "psnr": float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-10)))),
            "ssim": float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=1.0)
                                   for x, y in zip(a, b)]))}


def landmarks_on_crops(lm: Landmarker, crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    out = []
    for crop, box in zip(crops, boxes):
        big = cv2.resize(crop, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        out.append(lm(big, np.asarray(box) * UPSCALE) / UPSCALE)
    return np.array(out)


def inter_ocular(marks: np.ndarray) -> np.ndarray:
    return np.linalg.norm(marks[:, 36:42].mean(1) - marks[:, 42:48].mean(1), axis=1)


def mouth_opening(marks: np.ndarray) -> np.ndarray:
    gap = np.linalg.norm(marks[:, [61, 62, 63]] - marks[:, [67, 66, 65]], axis=2).mean(1)
    return gap / inter_ocular(marks)


def _corr(x, y) -> float:
    if np.std(x) < 1e-9 or np.std(y) < 1e-9:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def expression_figures(ls: np.ndarray, lw: np.ndarray) -> dict:
    """Landmark error, mouth-opening correlation and spread of swaps (landmarks lw) against
    their sources (ls), both (N, 68, 2)."""
    err = np.linalg.norm(ls - lw, axis=2).mean(1) / inter_ocular(ls)
    ms, mw = mouth_opening(ls), mouth_opening(lw)
    return {"landmark_error": float(err.mean()), "mouth_corr": _corr(ms, mw),
            "mouth_std_ratio": float(np.std(mw) / max(np.std(ms), 1e-9))}


def expression(lm: Landmarker, src: np.ndarray, swapped: np.ndarray, boxes: np.ndarray) -> dict:
    return expression_figures(landmarks_on_crops(lm, src, boxes), landmarks_on_crops(lm, swapped, boxes))


def identity(emb: Embedder, real_a, real_b, a2b, b2a) -> dict:
    e = {k: np.stack([emb.from_chip(c) for c in v])
         for k, v in (("a", real_a), ("b", real_b), ("a2b", a2b), ("b2a", b2a))}
    mean_a, mean_b = e["a"].mean(0), e["b"].mean(0)

    def d(x, m):
        return np.linalg.norm(x - m, axis=1)

    return {
        "id_rate_a2b": float(np.mean(d(e["a2b"], mean_b) < d(e["a2b"], mean_a))),
        "id_rate_b2a": float(np.mean(d(e["b2a"], mean_a) < d(e["b2a"], mean_b))),
        "id_rate_real_a": float(np.mean(d(e["a"], mean_a) < d(e["a"], mean_b))),
        "id_rate_real_b": float(np.mean(d(e["b"], mean_b) < d(e["b"], mean_a))),
        "dist_a2b_to_b": float(d(e["a2b"], mean_b).mean()), "dist_a2b_to_a": float(d(e["a2b"], mean_a).mean()),
        "dist_b2a_to_a": float(d(e["b2a"], mean_a).mean()), "dist_b2a_to_b": float(d(e["b2a"], mean_b).mean()),
        "dist_real_a_to_a": float(d(e["a"], mean_a).mean()), "dist_real_b_to_b": float(d(e["b"], mean_b).mean()),
    }


def _source_frames(entries) -> list[np.ndarray]:
    """The whole source frame of each face-set entry (its photo, or its frame of the video)."""
    frames: dict = {}
    by_source: dict = {}
    for e in entries:
        by_source.setdefault(e["source"], set()).add(e.get("frame", 0))
    for src, wanted in by_source.items():
        path = Path(src)
        if not path.exists():
            raise FileNotFoundError(src)
        if is_image(path):
            frames[(src, 0)] = read_image(path)
            continue
        last = max(wanted)
        for i, f in iter_video(path):
            if i in wanted:
                frames[(src, i)] = f
            if i >= last:
                break
    return [frames[(e["source"], e.get("frame", 0))] for e in entries]


def swap_frames(swapper: Swapper, lm: Landmarker, frames, entries):
    """Copies of whole frames through the swap pipeline -> (output frames, the 68 landmarks
    predicted on each in its face-set entry's detector box, the swap summary)."""
    summary, outs, marks = SwapSummary(), [], []
    for frame, e in zip(frames, entries):
        out = frame.copy()
        swapper.process([out], 0, False, summary)
        outs.append(out), marks.append(lm(out, e["bbox"]))
    return outs, np.array(marks), summary


def whole_frames(model_dir, entries_a, entries_b, device: str = "auto") -> dict:
    """The swap as users get it: each held-out face's source frame through `facepair swap`'s
    pipeline (detect, align, model, mask, colour, blend), then 68 landmarks and a dlib embedding
    predicted on the output frame (the face set's detector box), against the source frame's
    landmarks and the real faces' embeddings."""
    lm, emb = Landmarker(), Embedder()
    src = {"a": _source_frames(entries_a), "b": _source_frames(entries_b)}
    marks = {s: [np.array(e["landmarks"], float) for e in ents]
             for s, ents in (("a", entries_a), ("b", entries_b))}
    mean = {s: np.mean([emb.from_landmarks(f, m) for f, m in zip(src[s], marks[s])], axis=0)
            for s in ("a", "b")}
    res = {}
    for name, side, other, ents in (("a2b", "a", "b", entries_a), ("b2a", "b", "a", entries_b)):
        swapper = Swapper(model_dir, SwapOptions(direction=name, device=device, progress=False))
        outs, lw, summary = swap_frames(swapper, lm, src[side], ents)
        e_sw = np.array([emb.from_landmarks(out, w) for out, w in zip(outs, lw)])
        d_own = np.linalg.norm(e_sw - mean[other], axis=1)
        d_src = np.linalg.norm(e_sw - mean[side], axis=1)
        res.update({f"frame_{k}_{name}": v for k, v in expression_figures(np.array(marks[side]), lw).items()})
        res.update({f"frame_id_rate_{name}": float(np.mean(d_own < d_src)),
                    f"frame_swapped_{name}": summary.faces_swapped / max(len(ents), 1)})
    return res


def video_flicker(model_dir, video, direction: str, seconds: float) -> dict:
    """Mean absolute frame-to-frame change inside the face region, swapped vs source."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "swap.mp4"
        swap(video, model_dir, out, SwapOptions(direction=direction, duration=seconds, progress=False))
        from ..faces.detect import make_detector
        det = make_detector("hog")
        diffs_src, diffs_out, prev, pair = [], [], None, None
        for (_, f), (_, g) in zip(iter_video(Path(video)), iter_video(out)):
            boxes = det(f)
            if not boxes:
                prev = None
                continue
            x0, y0, x1, y1 = (int(v) for v in boxes[0])
            cur = (f.astype(np.float32), g.astype(np.float32), (x0, y0, x1, y1))
            if len(diffs_src) == 15:                  # a before/after pair for the report
                pair = [cv2.resize(x, (480, round(480 * x.shape[0] / x.shape[1])),
                                   interpolation=cv2.INTER_AREA) for x in (f, g)]
            if prev is not None:
                bx = prev[2]
                sl = (slice(max(bx[1], 0), bx[3]), slice(max(bx[0], 0), bx[2]))
                diffs_src.append(np.abs(cur[0][sl] - prev[0][sl]).mean())
                diffs_out.append(np.abs(cur[1][sl] - prev[1][sl]).mean())
            prev = cur
    if not diffs_src:
        raise FacepairError(f"no face found in {video} to measure flicker")
    src, out_ = float(np.mean(diffs_src)), float(np.mean(diffs_out))
    return {"flicker_source": src, "flicker_swap": out_, "flicker_ratio": out_ / max(src, 1e-9),
            "video_frames": len(diffs_src) + 1, "_frames": pair}


def evaluate(model_dir, a=None, b=None, video=None, direction: str = "a2b",
             max_faces: int = 128, video_seconds: float = 4.0, device: str = "auto",
             frames: bool = True) -> dict:
    """Every figure as a flat dict (see the module docstring)."""
    dev = resolve_device(device)
    model, state = load_model(model_dir, dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if dev.type == "cuda" or cpu_has_bf16() \
        else torch.autocast(dev.type, enabled=False)
    val = state.get("validation", {})
    if a is None and not val.get("a") or b is None and not val.get("b"):
        raise FacepairError("the model folder records no validation faces: pass --a and --b")
    real_a, box_a, ent_a = _faces(a, None if a else val["a"], max_faces)
    real_b, box_b, ent_b = _faces(b, None if b else val["b"], max_faces)
    mk_a, mk_b = crop_marks(ent_a), crop_marks(ent_b)
    rec_a, rec_b = _run(model, real_a, mk_a, "a", "a", dev, amp), _run(model, real_b, mk_b, "b", "b", dev, amp)
    a2b, b2a = _run(model, real_a, mk_a, "a", "b", dev, amp), _run(model, real_b, mk_b, "b", "a", dev, amp)
    lm, emb = Landmarker(), Embedder()
    res = {"model": str(model_dir), "step": state["step"], "preset": state["preset"],
           "faces_a": len(real_a), "faces_b": len(real_b),
           "source": "face sets given" if a or b else "held-out validation faces"}
    for side, real, rec in (("a", real_a, rec_a), ("b", real_b, rec_b)):
        res.update({f"{k}_{side}": v for k, v in reconstruction(real, rec).items()})
    res.update(identity(emb, real_a, real_b, a2b, b2a))
    for name, src, sw, boxes in (("a2b", real_a, a2b, box_a), ("b2a", real_b, b2a, box_b)):
        res.update({f"{k}_{name}": v for k, v in expression(lm, src, sw, boxes).items()})
    if frames:
        try:
            res.update(whole_frames(model_dir, ent_a, ent_b, device))
        except FileNotFoundError as e:
            warnings.warn(f"whole-frame figures skipped: source footage not found ({e})")
    if video is not None:
        res.update(video_flicker(model_dir, video, direction, video_seconds))
    res["_samples"] = {"a": real_a[:6], "b": real_b[:6], "a2b": a2b[:6], "b2a": b2a[:6],
                       "rec_a": rec_a[:6], "rec_b": rec_b[:6]}
    return res
