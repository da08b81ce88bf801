"""`facepair evaluate`: numbers a user can trust about a trained pair.

- Reconstruction per side (A->A, B->B): L1, PSNR, SSIM (metrics.ssim: the training loss's).
- Identity of swaps: dlib 128-d embeddings of real A, real B, A->B and B->A, each computed on the
  64 px crop upscaled to dlib's 150 px chip, the same way for real and swapped faces. Each
  side's mean comes from its training faces, never from the faces scored; a swap counts as the
  target when it is nearer the target's mean than the source's and within 0.5 of it
  (metrics.id_figures); the real faces are the sanity check (near 100 %).
- Expression/pose fidelity: 68 landmarks predicted on each source crop and on its swap (same box,
  from the face set's detector box): inner-face landmark error over the inter-ocular distance,
  and the correlation across faces of the mouth opening and the eyelid gap in source and swap
  (metrics.expression_figures). A decoder that outputs one average face scores ~0 here.
- Grid: periodic artefacts of the decoder's upsampling, the swaps' lattice peaks over their
  source crops' (metrics.grid; about 1 without a grid, under 1 when blurred).
- A model with a landmark cue is fed each crop's stored landmarks (those `swap` would align it
  with), centred as measured after training (evaluate/calibrate.py, as `swap` does); the
  landmarks measured on its output are predicted afresh, as for every model.
- Whole frames: each held-out face's source frame swapped by the real pipeline (`swap`), then
  the same figures measured on the output frame at its own resolution (keys `frame_*`); the
  source side uses the face set's stored landmarks. Unswapped frames are failures, not scored.
- Video (optional): a whole video swapped by the real pipeline and measured frame by frame
  (video_figures): failures, ID, expression, face detail, flicker and jitter, and the clip
  rebuilt by its own side (SSIM, GMSD).
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np

from ..errors import FacepairError, Interrupted, out_of_bounds
from ..faces.detect import largest_first, make_detector
from ..faces.faceset import crop_marks
from ..faces.identity import Embedder
from ..faces.landmarks import Landmarker
from ..media.video import is_video_name, iter_video
from ..model.presets import DIRECTIONS
from ..model.store import load_model, read_state
from ..runtime import inference_autocast, resolve_device
from ..swap.options import SwapOptions
from ..swap.pipeline import Swapper, swap
from . import EVAL_FACES
from .frames import (embeddings, held_out_faces, landmarks_on_crops, run_model, source_frames, swap_frames,
                     training_means)
from .metrics import (border_strip, composite, detail, expression_figures, face_region, gmsd, grid, id_figures, identity, jitter,
                      reconstruction, ssim)


def expression(lm: Landmarker, src: np.ndarray, swapped: np.ndarray, boxes: np.ndarray) -> dict:
    return expression_figures(landmarks_on_crops(lm, src, boxes), landmarks_on_crops(lm, swapped, boxes))


def whole_frames(model_dir, entries_a, entries_b, means: dict | None, device: str = "auto",
                 color: str = SwapOptions.color) -> dict:
    """The swap as users get it: each held-out face's source frame through `facepair swap`'s
    pipeline (detect, align, model, mask, colour, blend), then 68 landmarks and a dlib embedding
    predicted on the output frame (the face set's detector box), against the source frame's
    landmarks and the training faces' mean embeddings `means` (None: no ID figures). A frame the
    pipeline left unswapped is a failure, counted (`frame_swapped_*`) and not scored."""
    lm, emb = Landmarker(), Embedder()
    res = {}
    for name, (side, other) in DIRECTIONS.items():
        ents = entries_a if side == "a" else entries_b
        swapper = Swapper(model_dir, SwapOptions(direction=name, device=device, color=color, progress=False))
        outs, lw, swapped = swap_frames(swapper, lm, source_frames(ents), ents)
        ok = np.flatnonzero(swapped)
        res[f"frame_swapped_{name}"] = len(ok) / max(len(ents), 1)
        if not len(ok):
            continue
        marks = np.array([ents[i]["landmarks"] for i in ok], float)
        res.update({f"frame_{k}_{name}": v for k, v in expression_figures(marks, lw[ok]).items()})
        if means is not None:
            e = emb.many([emb.chip(outs[i], lw[i]) for i in ok])
            res.update({f"frame_{k}_{name}": v for k, v in id_figures(e, means[other], means[side]).items()})
    return res


def video_figures(model_dir, video, direction: str = "a2b", seconds: float | None = None,
                  smooth: bool = True, reconstruct: bool = True, device: str = "auto",
                  means: dict | None = None, color: str = SwapOptions.color) -> dict:
    """A video (its first `seconds`; None: all of it) swapped by `facepair swap` (a temporal
    model with its rolling window; `smooth`: swap's landmark smoothing; `color`: its --color), then measured per
    frame in the source frame's HOG box (keys video_*, flicker_*, jitter_*):
    - failures: frames with no face found in the source, or left unswapped by the pipeline;
      counted, never scored;
    - video_kept: the share of the face's mask that swap kept from the source as something in
      front of the face (--occlusion auto; the mean over faces): holes where the face itself was
      taken for an occluder show here;
    - ID against the training faces' mean embeddings (metrics.id_figures);
    - mouth-opening and eyelid-gap correlation, their spread and mean ratios, inner-face
      landmark error (metrics.expression_figures);
    - landmark jitter and flicker (mean absolute frame-to-frame change of the face box's
      pixels), each swap / source;
    - face detail: the median over frames of mean |Laplacian| in the face region, swap / source;
    - how the face sits in the frame (metrics.composite), medians over frames: video_skin_tone
      (ΔE2000 across the face's outline, swap minus source), video_seam (gradient energy in the
      blend band, swap / source), video_mottling and video_mottling_chroma (patches of lightness
      and of colour over the face's skin, swap / source);
    - `reconstruct`: the same video rebuilt by its own side's decoder through the same pipeline,
      and against the source in the face region: SSIM (metrics.ssim) and GMSD, medians; and its
      expression figures as above (video_rec_mouth_corr, ...): what the shared code keeps of the
      mouth and the eyelids, apart from what the other decoder can draw.
    `means`: training_means(...)["frames"] when the caller has them (else made here)."""
    source, target = DIRECTIONS[direction]
    state = read_state(model_dir)
    det, lm, emb = make_detector("hog"), Landmarker(), Embedder()
    means = means or training_means(state, emb).get("frames")
    if means is None:
        warnings.warn("video ID figures skipped: the training faces' source footage was not found")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"swap": Path(tmp) / "swap.mp4", "rec": Path(tmp) / "rec.mp4"}
        runs = {"swap": direction, "rec": source * 2} if reconstruct else {"swap": direction}   # "aa": A rebuilt
        missed, left_out = {}, set()
        for what, d in runs.items():
            try:
                summary = swap(video, model_dir, paths[what], SwapOptions(
                    direction=d, duration=seconds, smooth=smooth, device=device, color=color, progress=False))
            except Interrupted:            # (its message names a temporary file, gone by now)
                raise KeyboardInterrupt from None
            missed[what] = set(summary.missed)
            left_out |= set(summary.left_out)       # (the same frames in both: the source's clock)
            if what == "swap":
                kept = summary.kept_share
        # the source's frames paired with the output's: those the swap left out (a timestamp
        # repeated) skipped, else every later frame met the output's next (one frame off)
        given = ((n, f) for n, f in iter_video(Path(video)) if n not in left_out)
        streams = [given, iter_video(paths["swap"])] + ([iter_video(paths["rec"])] if reconstruct else [])
        fails, ms, mw, embs, details, rec_ssim, rec_gmsd, sits = 0, [], [], [], [], [], [], []
        m_src, m_rec = [], []                # landmarks of frames rebuilt, source and rebuild
        diffs_src, diffs_out, prev, pair, border = [], [], None, None, None
        for (n, f), (_, g), *rec in zip(*streams):
            if g.shape != f.shape:              # an odd side came out one longer (even_sides)
                h, w = f.shape[:2]
                g, rec = np.ascontiguousarray(g[:h, :w]), [(m, np.ascontiguousarray(r[:h, :w])) for m, r in rec]
            boxes = det(f)
            if not boxes or n in missed["swap"]:
                fails += 1
                ms.append(None), mw.append(None)
                prev = None
                continue
            box = largest_first(boxes)[0]       # the same face every frame (dlib's order is by score)
            ms.append(lm(f, box)), mw.append(lm(g, box))
            embs.append(emb.from_landmarks(g, mw[-1]))
            region = face_region(ms[-1], f.shape)
            if region.any():
                details.append(detail(g, region) / max(detail(f, region), 1e-9))
            c = composite(f, g, ms[-1])
            if c is not None:
                sits.append(c)
            if rec and n not in missed["rec"] and region.any():
                ys, xs = np.nonzero(region)
                sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
                a, b = f[sl], rec[0][1][sl]
                if min(a.shape[:2]) >= 11:
                    rec_ssim.append(ssim(a.astype(np.float32) / 255, b.astype(np.float32) / 255))
                    rec_gmsd.append(gmsd(a, b))
                m_src.append(ms[-1]), m_rec.append(lm(rec[0][1], box))
            x0, y0, x1, y1 = (int(v) for v in box)
            cur = (f.astype(np.float32), g.astype(np.float32), (x0, y0, x1, y1))
            if len(diffs_src) == 15:                  # a before/after pair for the report
                pair = [cv2.resize(x, (480, round(480 * x.shape[0] / x.shape[1])),
                                   interpolation=cv2.INTER_AREA) for x in (f, g)]
                border = border_strip(f, g, ms[-1])
            if prev is not None:
                bx = prev[2]
                sl = (slice(max(bx[1], 0), bx[3]), slice(max(bx[0], 0), bx[2]))
                diffs_src.append(np.abs(cur[0][sl] - prev[0][sl]).mean())
                diffs_out.append(np.abs(cur[1][sl] - prev[1][sl]).mean())
            prev = cur
    found = [i for i, m in enumerate(ms) if m is not None]
    if len(found) < 2 or not diffs_src:
        raise FacepairError(f"{video}: a face was found and swapped in {len(found)} frames; "
                            "too few to measure")
    res = {"video_frames": len(ms), "video_failures": fails, "video_kept": kept}
    res.update({f"video_{k}": v for k, v in expression_figures(
        np.array([ms[i] for i in found]), np.array([mw[i] for i in found])).items()})
    if means is not None:
        res.update({f"video_{k}": v for k, v in id_figures(np.array(embs), means[target], means[source]).items()})
    src, out = float(np.mean(diffs_src)), float(np.mean(diffs_out))
    j_src, j_out = jitter(ms), jitter(mw)
    res.update({"flicker_source": src, "flicker_swap": out, "flicker_ratio": out / max(src, 1e-9),
                "jitter_source": j_src, "jitter_swap": j_out, "jitter_ratio": j_out / max(j_src, 1e-9),
                "video_detail": float(np.median(details))})
    if sits:
        res.update({f"video_{k}": float(np.median([c[k] for c in sits])) for k in sits[0]})
    if rec_ssim:
        res.update({"video_rec_ssim": float(np.median(rec_ssim)), "video_rec_gmsd": float(np.median(rec_gmsd))})
    if len(m_rec) >= 2:       # what of the expression survives the shared code, apart from the swap
        res.update({f"video_rec_{k}": v for k, v in expression_figures(np.array(m_src), np.array(m_rec)).items()})
    res["_frames"], res["_border"] = pair, border
    return res


FEW_FACES = 10        # below this many faces a side, evaluate says its correlations say little


def evaluate(model_dir, *args, **kwargs) -> dict:
    """Every figure as a flat dict (see the module docstring; the arguments: _evaluate's), with
    what it warned of under "warnings" (for the JSON and the report: they were on the terminal
    only), each said once (a model's uncalibrated cue was said twice)."""
    said: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)        # facepair's own (others as before)
            res = _evaluate(model_dir, *args, **kwargs)
    finally:
        for w in caught:
            if not issubclass(w.category, UserWarning):        # a library's: passed on as it was
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for text in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):
            said.append(text)
            warnings.warn(text)
    res["warnings"] = said
    return res


def _evaluate(model_dir, a=None, b=None, video=None, direction: str = "a2b",
              max_faces: int = EVAL_FACES, video_seconds: float | None = None, device: str = "auto",
              frames: bool = True, color: str = SwapOptions.color) -> dict:
    for flag, value, kind, bounds in (("--max-faces", max_faces, int, dict(least=1)),     # the command
                                      ("--video-seconds", video_seconds, float, dict(above=0))):  # line's, for
        why = out_of_bounds(value, kind, **bounds) if value is not None else None          # the API too
        if why:
            raise FacepairError(f"{flag}: {why}")
    if video is not None and Path(video).is_dir():
        raise FacepairError(f"--video takes a video file, not a folder: {video}")
    if video is not None and not Path(video).is_file():      # before the minutes of the rest
        raise FacepairError(f"video not found: {video}")
    if video is not None and not is_video_name(Path(video)):
        raise FacepairError(f"--video takes a video (by its name: .mp4, .mov, .mkv, ...): {video}")
    dev = resolve_device(device)
    model, state = load_model(model_dir, dev)
    amp = inference_autocast(dev)
    val = state.get("validation", {})
    if a is None and not val.get("a") or b is None and not val.get("b"):
        raise FacepairError("the model folder records no validation faces: pass --a and --b")
    trained = {**state.get("faces", {}), "size": model.cfg.size}
    real_a, box_a, ent_a = held_out_faces(a, None if a else val["a"], max_faces, trained)
    real_b, box_b, ent_b = held_out_faces(b, None if b else val["b"], max_faces, trained)
    mk_a, mk_b = crop_marks(ent_a), crop_marks(ent_b)
    rec_a, rec_b = run_model(model, real_a, mk_a, "a", "a", dev, amp), run_model(model, real_b, mk_b, "b", "b", dev, amp)
    a2b, b2a = run_model(model, real_a, mk_a, "a", "b", dev, amp), run_model(model, real_b, mk_b, "b", "a", dev, amp)
    lm, emb = Landmarker(), Embedder()
    if min(len(real_a), len(real_b)) < FEW_FACES:
        warnings.warn(f"{min(len(real_a), len(real_b))} face(s) scored on one side: its correlations "
                      f"and spreads say little on fewer than {FEW_FACES} faces")
    res = {"model": str(model_dir), "step": state["step"], "preset": state["preset"], "color": color,
           "faces_a": len(real_a), "faces_b": len(real_b),
           "source": "face sets given" if a or b else "held-out validation faces"}
    # the sides' mean embeddings: over as many training faces as faces scored (16 to 64)
    means = training_means(state, emb, min(64, max(16, max_faces)), frames=frames or video is not None)
    # the video first: one without a face ("no face found in any of its frames") is said before
    # the minutes of the other figures, not after them
    seen = video_figures(model_dir, video, direction, video_seconds, device=device,
                         means=means.get("frames"), color=color) if video is not None else None
    for side, real, rec in (("a", real_a, rec_a), ("b", real_b, rec_b)):
        res.update({f"{k}_{side}": v for k, v in reconstruction(real, rec).items()})
    res.update(identity(embeddings(emb, a=real_a, b=real_b, a2b=a2b, b2a=b2a), means["crops"]))
    for name, src, sw, boxes in (("a2b", real_a, a2b, box_a), ("b2a", real_b, b2a, box_b)):
        res.update({f"{k}_{name}": v for k, v in expression(lm, src, sw, boxes).items()})
        res[f"grid_{name}"] = grid(sw) / grid(src)          # periodic artefacts, swap / source
    if frames:
        try:
            if "frames" not in means:
                raise FileNotFoundError("the training faces' footage")
            res.update(whole_frames(model_dir, ent_a, ent_b, means["frames"], device, color))
        except FileNotFoundError as e:
            warnings.warn(f"whole-frame figures skipped: source footage not found ({e})")
    if seen is not None:
        res.update(seen)
        res["video"], res["direction"] = str(video), direction
    res["_samples"] = {"a": real_a[:6], "b": real_b[:6], "a2b": a2b[:6], "b2a": b2a[:6],
                       "rec_a": rec_a[:6], "rec_b": rec_b[:6]}
    return res
