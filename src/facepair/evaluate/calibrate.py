"""Where a landmark-cue model centres the source's cue when it swaps, measured once after training.

A cue model's decoders read the cue points as offsets from a centre (model/autoencoder.py). Taken
from the source side's own mean face, the offsets carry the expression but land on the target's
neutral mouth: given Reagan's nearly closed lips, Obama's decoder draws Obama's half-open mean
mouth. Taken from the target side's mean, they carry the source's lips as they are, which a decoder
trained on a side that moves its mouth less cannot draw. Which works best differs by direction and
by pair, so it is measured, not assumed: training faces (never the held-out ones) are swapped into
their whole source frames by the real pipeline, with the centre moved 0, 1/2 and all of the way to
the target's mean, and per direction the shift whose swaps follow the source's mouth opening best
(correlation) is kept in state.json (`cue_shift`), with every figure (`cue_calibration`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..faces.faceset import load_index
from ..faces.landmarks import Landmarker
from ..swap.pipeline import SwapOptions, Swapper
from ..training import checkpoint
from .metrics import _source_frames, expression_figures, swap_frames

GRID = (0.0, 0.5, 1.0)


def training_entries(state: dict, side: str, faces: int) -> list[dict]:
    """`faces` face-set entries of `side`, evenly spread over its training faces (not held out)."""
    held = set(state.get("validation", {}).get(side, []))
    entries = [e for fs in state["facesets"][side] for e in load_index(Path(fs["path"]))["faces"]
               if f"{fs['path']}/{e['file']}" not in held]
    keep = np.linspace(0, len(entries) - 1, min(faces, len(entries))).round().astype(int)
    return [entries[i] for i in keep] if entries else []


def calibrate(model_dir, faces: int = 64, device: str = "auto", grid=GRID) -> dict:
    """Measure and record the cue shift of each direction -> {"a2b": shift, "b2a": shift}.
    Raises FileNotFoundError when the training faces' source footage has gone."""
    model_dir = Path(model_dir)
    state = checkpoint.read_state(model_dir)
    entries = {s: training_entries(state, s, faces) for s in "ab"}
    frames = {s: _source_frames(entries[s]) for s in "ab"}
    lm = Landmarker()
    shift, figures = {}, {}
    for name, side in (("a2b", "a"), ("b2a", "b")):
        swapper = Swapper(model_dir, SwapOptions(direction=name, device=device, progress=False))
        target = "ab".index(swapper.target)
        source_marks = np.array([e["landmarks"] for e in entries[side]], float)
        figures[name] = {}
        for s in grid:
            swapper.model.cue_shift[target] = s
            _, marks, _ = swap_frames(swapper, lm, frames[side], entries[side])
            figures[name][f"{s:g}"] = expression_figures(source_marks, marks)
        shift[name] = max(grid, key=lambda s: figures[name][f"{s:g}"]["mouth_corr"])
    checkpoint.update_state(model_dir, cue_shift=shift, cue_calibration={
        "faces": {s: len(entries[s]) for s in "ab"}, "figures": figures})
    return shift
