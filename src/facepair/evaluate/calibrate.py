"""How a landmark-cue model feeds the source's cue to the other decoder, measured after training.

A cue model's decoders read the cue points as offsets from a centre (model/autoencoder.py). Taken
from the source side's own mean face, the offsets carry the expression but land on the target's
neutral mouth: given Reagan's nearly closed lips, Obama's decoder draws Obama's half-open mean
mouth. Taken from the target side's mean, they carry the source's lips as they are, which a decoder
trained on a side that moves its mouth less cannot draw. And a decoder trained on a mouth that
hardly moves answers the other side's offsets weakly, so its swaps follow them better amplified.
Which works best differs by direction and by model, so it is measured, not assumed: training faces
(never the held-out ones) are swapped into their whole source frames by the real pipeline, with
the centre moved 0, 1/2 or all of the way to the target's mean and the offsets scaled 1, 1.5 or 2
times, and per direction the setting whose swaps follow the source's mouth opening best
(correlation) is kept in state.json (`cue_shift`, `cue_gain`), with every figure
(`cue_calibration`).
"""
from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np

from ..faces.landmarks import Landmarker
from ..model.presets import DIRECTIONS
from ..model.store import read_state, update_state
from ..swap.options import SwapOptions
from ..swap.pipeline import SwapSummary, Swapper
from ..training.options import TrainOptions
from .frames import iter_source_frames, training_entries
from .metrics import expression_figures

SHIFTS, GAINS = (0.0, 0.5, 1.0), (1.0, 1.5, 2.0)
CHUNK = 16       # frames swapped per model call (hd, 2 cores: 46 -> 37 s for 32 faces per side)


def _chunks(numbered, n: int):
    """(indices, frames) of up to n at a time from an iterator of (index, frame)."""
    it = iter(numbered)
    while chunk := list(itertools.islice(it, n)):
        idx, frames = zip(*chunk)
        yield idx, list(frames)


def calibrate(model_dir, faces: int = TrainOptions.calibrate_faces, device: str = "auto") -> dict:
    """Measure and record each direction's cue setting -> {"a2b": {"shift": s, "gain": g}, ...}.
    Source frames stream through one at a time (a few MB, whatever the count and resolution), and
    each is searched and aligned once, then swapped with every setting. Raises FileNotFoundError
    when the training faces' source footage has gone."""
    model_dir = Path(model_dir)
    state = read_state(model_dir)
    lm = Landmarker()
    settings = list(itertools.product(SHIFTS, GAINS))
    best, figures, counts = {}, {}, {}
    for name, (side, _) in DIRECTIONS.items():
        entries = training_entries(state, side, faces)
        counts[side] = len(entries)
        with warnings.catch_warnings():         # "never calibrated": this is the calibration
            warnings.simplefilter("ignore")
            swapper = Swapper(model_dir, SwapOptions(direction=name, device=device, progress=False))
        target = "ab".index(swapper.target)
        marks = np.zeros((len(settings), len(entries), 68, 2))
        summary = SwapSummary()
        for idx, frames in _chunks(iter_source_frames(entries), CHUNK):
            jobs = swapper.find(frames, 0, summary)                  # detect and align once
            for s, (shift, gain) in enumerate(settings):
                swapper.model.cue_shift[target], swapper.model.cue_gain[target] = shift, gain
                outs = [f.copy() for f in frames]
                swapper.render(outs, jobs, summary)                  # CHUNK frames per model call
                for i, out in zip(idx, outs):
                    marks[s, i] = lm(out, entries[i]["bbox"])
        source_marks = np.array([e["landmarks"] for e in entries], float)
        measured = [expression_figures(source_marks, m) for m in marks]
        figures[name] = {f"shift {sh:g} gain {g:g}": f for (sh, g), f in zip(settings, measured)}
        (shift, gain), _ = max(zip(settings, measured), key=lambda p: p[1]["mouth_corr"])
        best[name] = {"shift": shift, "gain": gain}
    update_state(model_dir, cue_shift={k: v["shift"] for k, v in best.items()},
                            cue_gain={k: v["gain"] for k, v in best.items()},
                            cue_calibration={"faces": counts, "figures": figures})
    return best
