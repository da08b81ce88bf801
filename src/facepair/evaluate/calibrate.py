"""How a landmark-cue model feeds the source's cue to the other decoder, measured after training.

A cue model's decoders read the cue points as offsets from a centre (model/autoencoder.py). Taken
from the source side's own mean face, the offsets carry the expression but land on the target's
neutral mouth: given Reagan's nearly closed lips, Obama's decoder draws Obama's half-open mean
mouth. Taken from the target side's mean, they carry the source's lips as they are, which a decoder
trained on a side that moves its mouth less cannot draw. And a decoder trained on a mouth that
hardly moves answers the other side's offsets weakly, so its swaps follow them better amplified,
the more so the longer it trained (after 10,083 steps on a GPU, 4x). Which works best differs by
direction and by model, so it is measured, not assumed: training faces (never the held-out ones)
are swapped into their whole source frames by the real pipeline, with the centre moved 0, 1/2 or
all of the way to the target's mean and the offsets scaled 1, 1.5, 2, 3 or 4 times, and per
direction the setting whose swaps follow the source's mouth opening best (correlation) is kept in
state.json (`cue_shift`, `cue_gain`), with every figure (`cue_calibration`). Driven hard, a decoder
can draw a mouth that is no longer the target's (a 20-minute `hd` model at centre 1/2, gain 4:
89 % of its swaps of training frames recognised as Reagan): so the settings are tried in order of
that correlation, and the first whose swaps of every 4th calibration frame stay the target in at
least ID_RATE of them (evaluate's identity test, against the training faces' mean embeddings) is
kept (`id_rate` in its figures; where none does, the one that comes closest).

A model with the lids in its cue (`cue_lids`) then has the lids' offsets scaled 1, 2, 4, 8, 16 or
32 times at that setting, and keeps the gain whose swaps follow the source's eyelid gap best
(correlation), with the same identity check, among the gains that do not cost the mouth's
correlation more than LID_MOUTH_SLACK (`cue_lid_gain`; figures under `lid_figures`): trained on a
side that hardly blinks, a decoder answers the other side's blinks weakly, as it does its mouth.
"""
from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np

from ..faces.identity import Embedder
from ..faces.landmarks import Landmarker
from ..model.presets import DIRECTIONS
from ..model.store import read_state, update_state
from ..swap.options import SwapOptions
from ..swap.pipeline import SwapSummary, Swapper
from ..training.options import TrainOptions
from .frames import iter_source_frames, training_entries, training_means
from .metrics import expression_figures, id_figures

# gains to 2 only left a long-trained model's swaps with half the source's mouth movement: its
# best setting lay at that edge, on the training frames themselves (docs/results.md: "On a GPU")
SHIFTS, GAINS = (0.0, 0.5, 1.0), (1.0, 1.5, 2.0, 3.0, 4.0)
# cue_lids: the lids' offsets, at the mouth's kept setting (1 first: that setting itself, already
# measured). A grid to 4x left every direction of two 20-minute models at its edge, their
# eyelids still following better past it on the training frames (docs/results.md: "The lids' gain to 32x")
LID_GAINS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
LID_MOUTH_SLACK = 0.02   # the lids' gain may lower the mouth r on the training frames this much
CHUNK = 16       # frames swapped per model call (hd, 2 cores: 46 -> 37 s for 32 faces per side)
ID_RATE = 0.95   # evaluate's identity target, asked of the kept setting's swaps
ID_EVERY = 4     # of the calibration frames, these are embedded (114 ms each on 2 cores)


def _chunks(numbered, n: int):
    """(indices, frames) of up to n at a time from an iterator of (index, frame)."""
    it = iter(numbered)
    while chunk := list(itertools.islice(it, n)):
        idx, frames = zip(*chunk)
        yield idx, list(frames)


def choose(measured: list[dict], id_rate, key: str = "mouth_corr") -> int:
    """Index of the setting to keep: the best `key` correlation among those whose swaps stay the
    target (id_rate(index) >= ID_RATE, asked in order of correlation and recorded in `measured`);
    where none does, the one that comes closest, and of those the best `key` (32 faces give few
    distinct rates: a 10-minute demo model's settings tied at 81 %)."""
    for s in sorted(range(len(measured)), key=lambda s: -measured[s][key]):
        measured[s]["id_rate"] = id_rate(s)
        if measured[s]["id_rate"] >= ID_RATE:
            return s
    return max(range(len(measured)), key=lambda s: (measured[s]["id_rate"], measured[s][key]))


def choose_lids(measured: list[dict], id_rate) -> int:
    """Index of the lids' gain to keep: as choose() by the eyelids, among the gains whose swaps
    follow the mouth (its r) at most LID_MOUTH_SLACK worse than gain 1, measured[0] (the mouth's
    kept setting, always among them): driving the lids must not undo the mouth's choice."""
    among = [k for k, f in enumerate(measured)
             if f["mouth_corr"] >= measured[0]["mouth_corr"] - LID_MOUTH_SLACK]
    return among[choose([measured[k] for k in among], lambda j: id_rate(among[j]), key="eyelid_corr")]


def _measure(model_dir, name: str, entries: list, settings: list, apply, lm, emb, device):
    """Training frames of one direction swapped by the real pipeline with each setting
    (apply(model, target index, setting) sets it) -> (expression figures per setting, per
    setting the face chips of every ID_EVERY-th frame, for its identity). Frames stream through
    one at a time; each is searched and aligned once."""
    with warnings.catch_warnings():             # "never calibrated": this is the calibration
        warnings.simplefilter("ignore")
        # torch: each setting is applied to the model's buffers, which an exported graph bakes in
        swapper = Swapper(model_dir, SwapOptions(direction=name, device=device, engine="torch",
                                                 progress=False))
    target = "ab".index(swapper.target)
    marks = np.zeros((len(settings), len(entries), 68, 2))
    chips = [[] for _ in settings]              # embedded only for the settings ranked first
    summary = SwapSummary()
    for idx, frames in _chunks(iter_source_frames(entries), CHUNK):
        jobs = swapper.find(frames, 0, summary)                      # detect and align once
        for s, setting in enumerate(settings):
            apply(swapper.model, target, setting)
            outs = [f.copy() for f in frames]
            swapper.render(outs, jobs, summary)                      # CHUNK frames per model call
            for i, out in zip(idx, outs):
                marks[s, i] = lm(out, entries[i]["bbox"])
                if i % ID_EVERY == 0:
                    chips[s].append(emb.chip(out, marks[s, i]))
    source_marks = np.array([e["landmarks"] for e in entries], float)
    return [expression_figures(source_marks, m) for m in marks], chips


def _set_mouth(model, target: int, setting):       # with the lids' offsets as trained
    model.cue_shift[target], model.cue_gain[target] = setting
    model.cue_lid_gain[target] = 1.0


def calibrate(model_dir, faces: int = TrainOptions.calibrate_faces, device: str = "auto") -> dict:
    """Measure and record each direction's cue setting -> {"a2b": {"shift": s, "gain": g}, ...}
    (and "lid_gain" for a model with the lids in its cue). Raises FileNotFoundError when the
    training faces' source footage has gone."""
    model_dir = Path(model_dir)
    state = read_state(model_dir)
    lids = bool(state["model_config"].get("cue_lids"))
    lm, emb = Landmarker(), Embedder()
    settings = list(itertools.product(SHIFTS, GAINS))
    entries, figures, chips, counts = {}, {}, {}, {}
    for name, (side, _) in DIRECTIONS.items():
        entries[name] = training_entries(state, side, faces)
        counts[side] = len(entries[name])
        figures[name], chips[name] = _measure(model_dir, name, entries[name], settings, _set_mouth,
                                              lm, emb, device)
    means = training_means(state, emb, faces=min(faces, 64))["frames"]   # the footage was read

    def id_rate(chips_, side, other):        # of swaps from `side`'s frames into `other`
        e = np.array([emb.from_aligned(c) for c in chips_])
        return id_figures(e, means[other], means[side])["id_rate"]

    best, lid_figures = {}, {}
    for name, (side, other) in DIRECTIONS.items():
        s = choose(figures[name], lambda s: id_rate(chips[name][s], side, other))
        kept = figures[name][s]
        figures[name] = {f"shift {sh:g} gain {g:g}": f for (sh, g), f in zip(settings, figures[name])}
        best[name] = {"shift": settings[s][0], "gain": settings[s][1]}
        if lids:        # then the lids' gain, at the kept setting, by how well the eyelids follow
            mouth = settings[s]

            def set_lids(model, target, g, mouth=mouth):
                _set_mouth(model, target, mouth)
                model.cue_lid_gain[target] = g
            more, more_chips = _measure(model_dir, name, entries[name], LID_GAINS[1:], set_lids,
                                        lm, emb, device)
            measured, lid_chips = [dict(kept)] + more, [chips[name][s]] + more_chips  # 1x: kept

            def lid_id_rate(k):         # the kept setting's identity was asked already
                return measured[k]["id_rate"] if "id_rate" in measured[k] else \
                    id_rate(lid_chips[k], side, other)
            k = choose_lids(measured, lid_id_rate)
            lid_figures[name] = {f"lid gain {g:g}": f for g, f in zip(LID_GAINS, measured)}
            best[name]["lid_gain"] = LID_GAINS[k]
    record = dict(cue_shift={k: v["shift"] for k, v in best.items()},
                  cue_gain={k: v["gain"] for k, v in best.items()},
                  cue_calibration={"faces": counts, "figures": figures})
    if lids:
        record["cue_lid_gain"] = {k: v["lid_gain"] for k, v in best.items()}
        record["cue_calibration"]["lid_figures"] = lid_figures
    update_state(model_dir, **record)
    return best
