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

from ..errors import FacepairError
from ..faces.detect import make_detector
from ..faces.faceset import crop_marks
from ..faces.identity import Embedder
from ..faces.landmarks import Landmarker
from ..media.video import iter_video
from ..model.presets import DIRECTIONS
from ..model.store import load_model
from ..runtime import inference_autocast, resolve_device
from ..swap.options import SwapOptions
from ..swap.pipeline import Swapper, swap
from . import EVAL_FACES
from .frames import embeddings, held_out_faces, landmarks_on_crops, run_model, source_frames, swap_frames
from .metrics import expression_figures, identity, reconstruction


def expression(lm: Landmarker, src: np.ndarray, swapped: np.ndarray, boxes: np.ndarray) -> dict:
    return expression_figures(landmarks_on_crops(lm, src, boxes), landmarks_on_crops(lm, swapped, boxes))


def whole_frames(model_dir, entries_a, entries_b, device: str = "auto") -> dict:
    """The swap as users get it: each held-out face's source frame through `facepair swap`'s
    pipeline (detect, align, model, mask, colour, blend), then 68 landmarks and a dlib embedding
    predicted on the output frame (the face set's detector box), against the source frame's
    landmarks and the real faces' embeddings."""
    lm, emb = Landmarker(), Embedder()
    src = {"a": source_frames(entries_a), "b": source_frames(entries_b)}
    entries = {"a": entries_a, "b": entries_b}
    marks = {s: [np.array(e["landmarks"], float) for e in ents] for s, ents in entries.items()}
    mean = {s: np.mean([emb.from_landmarks(f, m) for f, m in zip(src[s], marks[s])], axis=0)
            for s in ("a", "b")}
    res = {}
    for name, (side, other) in DIRECTIONS.items():
        ents = entries[side]
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
             max_faces: int = EVAL_FACES, video_seconds: float = 4.0, device: str = "auto",
             frames: bool = True) -> dict:
    """Every figure as a flat dict (see the module docstring)."""
    dev = resolve_device(device)
    model, state = load_model(model_dir, dev)
    amp = inference_autocast(dev)
    val = state.get("validation", {})
    if a is None and not val.get("a") or b is None and not val.get("b"):
        raise FacepairError("the model folder records no validation faces: pass --a and --b")
    real_a, box_a, ent_a = held_out_faces(a, None if a else val["a"], max_faces)
    real_b, box_b, ent_b = held_out_faces(b, None if b else val["b"], max_faces)
    mk_a, mk_b = crop_marks(ent_a), crop_marks(ent_b)
    rec_a, rec_b = run_model(model, real_a, mk_a, "a", "a", dev, amp), run_model(model, real_b, mk_b, "b", "b", dev, amp)
    a2b, b2a = run_model(model, real_a, mk_a, "a", "b", dev, amp), run_model(model, real_b, mk_b, "b", "a", dev, amp)
    lm, emb = Landmarker(), Embedder()
    res = {"model": str(model_dir), "step": state["step"], "preset": state["preset"],
           "faces_a": len(real_a), "faces_b": len(real_b),
           "source": "face sets given" if a or b else "held-out validation faces"}
    for side, real, rec in (("a", real_a, rec_a), ("b", real_b, rec_b)):
        res.update({f"{k}_{side}": v for k, v in reconstruction(real, rec).items()})
    res.update(identity(embeddings(emb, a=real_a, b=real_b, a2b=a2b, b2a=b2a)))
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
