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

What it costs is kept in proportion to the training (issue 36): the frames per side follow the
training's length (faces_for), and every setting is first swapped on the quarter of the frames
whose identity is read (every ID_EVERY-th); only the REFINE best-following there are swapped on
every frame, and asked in that order (where none of them stays the target, the rest in order,
each that does swapped on every frame, until REFINE_PASSING do); the lids' gains likewise
(REFINE_LIDS that keep the mouth; where those lose the target, the rest in order, as the
mouth's, before gain 1 is kept). Each frame is read, searched and aligned once for every
setting and each face encoded once (the encoder does not see the cue); a setting's identity
chips are embedded only when the rule asks for its verdict, in one batch (dlib's network in
torch, faces/descriptor.py: 2.1 ms a chip, where dlib's own took 57 and was half of the time).
On synthetic figures with the noise of their frame counts this chooses as measuring everything
does, or as well (tests/test_presets.py); on real models, benchmarks/calibration.py and
docs/results.md ("Calibration in proportion", "Swap speed and calibration, second pass",
"Identity in torch").
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
FACES_PER_MINUTE, FACES_MIN, FACES_MAX = 12.8, 32, 256   # faces_for: 256 after 20 minutes
CHUNK = 16       # frames swapped per model call (hd, 2 cores: 46 -> 37 s for 32 faces per side)
HOLD_BYTES = 512 << 20   # calibration frames kept in memory between passes (720p: about 190)
ID_RATE = 0.95   # evaluate's identity target, asked of the kept setting's swaps
ID_EVERY = 4     # of the calibration frames, these are embedded (identity) and swapped first
REFINE = 3       # the mouth's settings best on those frames, then swapped on every frame
REFINE_LIDS = 2  # likewise the lids' gains
REFINE_PASSING = 3   # where none of the leaders stays the target: of the rest, those that do


def _chunks(numbered, n: int):
    """(indices, frames) of up to n at a time from an iterator of (index, frame)."""
    it = iter(numbered)
    while chunk := list(itertools.islice(it, n)):
        idx, frames = zip(*chunk)
        yield idx, list(frames)


class _Identity:
    """Whether the swaps of one setting stay the target: the share of its chips (every
    ID_EVERY-th calibration frame) evaluate's identity test recognises as the target. A
    setting's chips are embedded once, together (2.1 ms each: faces/descriptor.py)."""

    def __init__(self, emb: Embedder, means, target: str, source: str):
        """means: {side: mean embedding of its training faces}."""
        self.emb, self.means, self.sides = emb, means, (target, source)
        self.hits: dict = {}                    # per setting: [recognised as the target] per chip

    def verdict(self, setting, chips: list, full: bool | str = False) -> dict:
        """{"id_pass", "id_rate", "id_seen"} of a setting's chips: whether ID_RATE of them are
        recognised, and the rate over every chip; `full` "prefix": the rate over the chips in
        frame order up to where that order makes the verdict sure (61 of 64 recognised, or 4
        not): how close a setting that fails comes, as choose()'s fallback reads it."""
        if len(self.hits.get(setting, ())) != len(chips):
            target, source = (self.means[side] for side in self.sides)
            self.hits[setting] = [id_figures(e[None], target, source)["id_rate"] == 1.0
                                  for e in self.emb.many(chips)]
        hits, n = self.hits[setting], len(chips)
        seen = n
        if full == "prefix":
            passed = 0
            for seen, hit in enumerate(hits):
                if passed >= ID_RATE * n or seen - passed > (1 - ID_RATE) * n:
                    break
                passed += hit
            else:
                seen = n
        got = hits[:seen]
        return {"id_rate": float(np.mean(got)) if got else 0.0, "id_seen": len(got),
                "id_pass": n > 0 and sum(hits) >= ID_RATE * n}


FALLBACK = 3     # where no setting stays the target: these, the closest so far, get every chip


def choose(measured: list[dict], verdict, key: str = "mouth_corr", settle=None) -> int:
    """Index of the setting to keep: the best `key` correlation among those whose swaps stay the
    target (verdict(index, full=False)["id_pass"], asked in order and recorded in `measured`):
    settings measured on more frames first (the coarse pass's leaders, on every frame), each
    group by its `key`. Where none stays the target, the one that comes closest: of the FALLBACK
    with the most chips recognised before their verdicts in frame order (verdict(index,
    full="prefix"): the same whatever order the verdicts were first reached in), the best rate
    over every chip, then
    the best `key` (few chips give few distinct rates; `settle(index)`, where given, measures each
    of those again before the tie is broken)."""
    for s in sorted(range(len(measured)), key=lambda s: (-measured[s].get("frames", 0), -measured[s][key])):
        measured[s].update(verdict(s, full=False))
        if measured[s]["id_pass"]:
            return s
    for s in range(len(measured)):          # how close each came, read in frame order
        measured[s].update(verdict(s, full="prefix"))
    near = sorted(range(len(measured)), key=lambda s: (-round(measured[s]["id_rate"] * measured[s]["id_seen"]),
                                                       -measured[s][key]))[:FALLBACK]
    for s in near:
        measured[s].update(verdict(s, full=True))
        if settle is not None:
            settle(s)
    return max(near, key=lambda s: (measured[s]["id_rate"], measured[s][key]))


def choose_lids(measured: list[dict], verdict) -> int:
    """Index of the lids' gain to keep: as choose() by the eyelids, among the gains measured on
    as many frames as gain 1, measured[0] (the mouth's kept setting, always among them), whose
    swaps follow the mouth (its r) at most LID_MOUTH_SLACK worse than gain 1's: driving the lids
    must not undo the mouth's choice."""
    among = [k for k, f in enumerate(measured) if f.get("frames") == measured[0].get("frames")
             and f["mouth_corr"] >= measured[0]["mouth_corr"] - LID_MOUTH_SLACK]
    return among[choose([measured[k] for k in among], lambda j, full: verdict(among[j], full),
                        key="eyelid_corr")]


class _Direction:
    """One direction's calibration frames swapped by the real pipeline with settings (apply(model,
    target index, setting) sets one): the 68 landmarks predicted on each swapped frame and, on
    every ID_EVERY-th frame, the chip its identity is read from. Frames stream through once a
    pass; each chunk is searched and aligned once for every setting."""

    def __init__(self, model_dir, name: str, entries: list, lm, emb, device):
        with warnings.catch_warnings():             # "never calibrated": this is the calibration
            warnings.simplefilter("ignore")
            # torch: each setting is applied to the model's buffers, which an exported graph bakes
            # in; no occlusion mask: this measures what the model draws; colour lab, swap's
            # default, whatever --color a later swap takes (skin was judged on models
            # calibrated so: docs/results.md, "--color skin judged again")
            self.swapper = Swapper(model_dir, SwapOptions(direction=name, device=device, engine="torch",
                                                          occlusion="none", color="lab", progress=False))
        self.entries, self.lm, self.emb = entries, lm, emb
        self.target = "ab".index(self.swapper.target)
        self.source = np.array([e["landmarks"] for e in entries], float)
        self.marks, self.chips = {}, {}             # per setting: {frame: landmarks}, [chips]
        self.found: dict = {}                       # per frame: its faces' jobs, less the place
        self.every = list(range(len(entries)))
        self.coarse = self.every[::ID_EVERY]        # the identity frames, swapped first
        self.held, self.held_bytes = {}, 0          # frames kept in memory (HOLD_BYTES)
        self.swapper.models[0].codes = {}           # each crop encoded once, whatever the setting

    def frames(self, wanted: list[int]):
        """(position in `wanted`, frame) of calibration frames: those held in memory, then the
        rest read from their footage (one pass) and held while they fit in HOLD_BYTES: each
        pass would otherwise decode every video again up to its last wanted frame."""
        missing = [k for k, i in enumerate(wanted) if i not in self.held]
        yield from ((k, self.held[i]) for k, i in enumerate(wanted) if i in self.held)
        for m, frame in iter_source_frames([self.entries[wanted[k]] for k in missing]):
            if self.held_bytes + frame.nbytes <= HOLD_BYTES:
                self.held[wanted[missing[m]]], self.held_bytes = frame, self.held_bytes + frame.nbytes
            yield missing[m], frame

    def run(self, settings: list, apply, frames: list[int]):
        """Swap `frames` (indices into entries) with each setting (hashable)."""
        todo = [s for s in settings if any(i not in self.marks.get(s, {}) for i in frames)]
        frames = [i for i in frames if any(i not in self.marks.get(s, {}) for s in todo)]
        if not todo:
            return
        summary = SwapSummary()
        for idx, images in _chunks(self.frames(frames), CHUNK):
            idx = [frames[i] for i in idx]
            new = [p for p, i in enumerate(idx) if i not in self.found]   # detect and align once
            for job in self.swapper.find([images[p] for p in new], 0, summary):
                self.found.setdefault(idx[new[job[0]]], []).append(job[1:])
            jobs = [(p, *job) for p, i in enumerate(idx) for job in self.found.setdefault(i, [])]
            for setting in todo:
                have = self.marks.setdefault(setting, {})
                if all(i in have for i in idx):
                    continue
                apply(self.swapper.model, self.target, setting)
                outs = [f.copy() for f in images]
                self.swapper.render(outs, jobs, summary)                 # CHUNK frames per call
                for i, out in zip(idx, outs):
                    if i not in have:
                        have[i] = self.lm(out, self.entries[i]["bbox"])
                        if i % ID_EVERY == 0:
                            self.chips.setdefault(setting, []).append((i, self.emb.chip(out, have[i])))

    def figures(self, setting, only=None) -> dict:
        """Expression figures of a setting over the frames swapped with it so far (or those of
        them in `only`); `frames`: how many."""
        got = self.marks[setting]
        idx = sorted(got) if only is None else [i for i in only if i in got]
        return dict(expression_figures(self.source[idx], np.array([got[i] for i in idx])), frames=len(idx))

    def id_chips(self, setting) -> list:
        return [c for _, c in sorted(self.chips[setting], key=lambda ic: ic[0])]

    def coarse_then_fine(self, settings: list, apply, key: str, refine: int, keep=None) -> list[dict]:
        """Every setting on the identity frames (every ID_EVERY-th), then, in order of `key`
        there, each on every frame until `refine` of them are kept by `keep(figures)` on every
        frame (None: all) -> figures per setting (`frames`: on how many)."""
        self.run(settings, apply, self.coarse)
        figs = [self.figures(s) for s in settings]
        kept = 0
        for k in sorted(range(len(settings)), key=lambda k: -figs[k][key]):
            if kept == refine:
                break
            self.run([settings[k]], apply, self.every)
            figs[k] = self.figures(settings[k])
            kept += keep is None or keep(figs[k])
        return figs


def faces_for(train_seconds: float) -> int:
    """Calibration frames per side for a training this long: FACES_PER_MINUTE of it, in steps of
    FACES_MIN, at most FACES_MAX (20 minutes on 2 cores), so that the measurement takes a share
    of the training rather than minutes whatever it was (docs/results.md, "Calibration")."""
    n = FACES_MIN * round(FACES_PER_MINUTE * train_seconds / 60 / FACES_MIN)
    return int(min(FACES_MAX, max(FACES_MIN, n)))


def _set_mouth(model, target: int, setting):       # with the lids' offsets as trained
    model.cue_shift[target], model.cue_gain[target] = setting
    model.cue_lid_gain[target] = 1.0


def _refine_passing(run, figs: list[dict], rest: list[int], settings, apply, verdict, key: str,
                    keep=None) -> list[int]:
    """Of the settings numbered `rest` (measured on the identity frames only), in order of their
    `key` there: each whose swaps stay the target swapped on every frame too (figures updated),
    until REFINE_PASSING of them also pass keep(figures) (None: all) -> those."""
    passing = []
    for k in sorted(rest, key=lambda k: -figs[k][key]):
        figs[k].update(verdict(k, False))
        if figs[k]["id_pass"]:
            run.run([settings[k]], apply, run.every)
            figs[k].update(run.figures(settings[k]))
            if keep is None or keep(figs[k]):
                passing.append(k)
                if len(passing) == REFINE_PASSING:
                    break
    return passing


def _choose_refining(run, figs: list[dict], settings: list, verdict) -> int:
    """choose() over settings of which the coarse pass's leaders are measured on every frame:
    their identity asked in order of their r; where none of them stays the target, the rest in
    order of their coarse r, each that does swapped on every frame too, until REFINE_PASSING
    of them do (then the best r of those) or none is left (then the closest, as choose() takes
    it, but with its candidates' ties broken by their r on every frame)."""
    every = len(run.every)
    full = [k for k in range(len(figs)) if figs[k]["frames"] == every]
    for k in sorted(full, key=lambda k: -figs[k]["mouth_corr"]):
        figs[k].update(verdict(k, False))
        if figs[k]["id_pass"]:
            return k
    rest = [k for k in range(len(figs)) if k not in full]
    passing = _refine_passing(run, figs, rest, settings, _set_mouth, verdict, "mouth_corr")
    if passing:
        return max(passing, key=lambda k: figs[k]["mouth_corr"])
    def on_every_frame(k):                  # the closest candidates' ties: by r on every frame
        run.run([settings[k]], _set_mouth, run.every)
        figs[k].update(run.figures(settings[k]))
    return choose(figs, verdict, settle=on_every_frame)     # none stays the target: the closest


def select(run, ident, lids: bool) -> tuple[dict, list, list | None]:
    """One direction's setting from its swaps (`run`, a _Direction) and their identity (`ident`,
    an _Identity) -> ({"shift", "gain"[, "lid_gain"]}, figures per setting (SHIFTS x GAINS),
    figures per lids' gain (LID_GAINS; None without the lids))."""
    settings = list(itertools.product(SHIFTS, GAINS))

    def verdict(key, full):                     # key: a setting, or a lids' gain
        return ident.verdict(key, run.id_chips(key), full)
    figs = run.coarse_then_fine(settings, _set_mouth, "mouth_corr", REFINE)
    s = _choose_refining(run, figs, settings, lambda k, full: verdict(settings[k], full))
    mouth = settings[s]
    run.run([mouth], _set_mouth, run.every)                      # the kept one: on every frame
    figs[s].update(run.figures(mouth))
    best = {"shift": mouth[0], "gain": mouth[1]}
    if not lids:
        return best, figs, None

    def set_lids(model, target, g):             # then the lids' gain, at the kept setting
        _set_mouth(model, target, mouth)
        model.cue_lid_gain[target] = g
    # in order of the eyelids' r on the identity frames, gains are swapped on every frame until
    # REFINE_LIDS of them keep the mouth (the rule's slack); the rule sees those
    floor = figs[s]["mouth_corr"] - LID_MOUTH_SLACK
    measured = [figs[s]] + run.coarse_then_fine(list(LID_GAINS[1:]), set_lids, "eyelid_corr",
                                                REFINE_LIDS, keep=lambda f: f["mouth_corr"] >= floor)

    def lid_verdict(k, full):
        return verdict(mouth if k == 0 else LID_GAINS[k], full)
    k = choose_lids(measured, lid_verdict)
    if k == 0 and any(f.get("id_pass") is False for f in measured[1:]):
        k = _lids_past_the_leaders(run, measured, set_lids, lid_verdict, floor)
    return dict(best, lid_gain=LID_GAINS[k]), figs, measured


def _lids_past_the_leaders(run, measured: list[dict], set_lids, verdict, floor: float) -> int:
    """Where choose_lids kept gain 1 because the leaders lost the target: the other gains, in
    order of their eyelid r on the identity frames, as _choose_refining goes on for the mouth
    (_refine_passing), until REFINE_PASSING of them also keep the mouth (r >= floor) -> the best
    eyelid r of those and gain 1 (measured[0]). Without it,
    three 20-minute models of the Obama pair whose 8x and 16x lost Reagan kept 1x, their 2x and
    4x never asked; with it 2x, 4x and 4x, eyelid r +0.05 to +0.11 on a new recording
    (docs/results.md: "A nonlinear stage at 128 px, an SSIM-led loss and two fixes for the
    Obama eyelids")."""
    rest = [k for k in range(1, len(measured)) if measured[k].get("frames") != measured[0].get("frames")]
    passing = [0] + _refine_passing(run, measured, rest, LID_GAINS, set_lids, verdict, "eyelid_corr",
                                    keep=lambda f: f["mouth_corr"] >= floor)
    return max(passing, key=lambda k: measured[k]["eyelid_corr"])


def calibrate(model_dir, faces: int | None = None, device: str = "auto") -> dict:
    """Measure and record each direction's cue setting -> {"a2b": {"shift": s, "gain": g}, ...}
    (and "lid_gain" for a model with the lids in its cue) on `faces` training frames per side
    (None: faces_for the model's training time). Raises FileNotFoundError when the training
    faces' source footage has gone."""
    model_dir = Path(model_dir)
    state = read_state(model_dir)
    faces = faces_for(state.get("train_seconds", 0.0)) if faces is None else faces
    lids = bool(state["model_config"].get("cue_lids"))
    lm, emb = Landmarker(), Embedder()
    for side in "ab":                   # the footage first: the means below read it too
        gone = [e["source"] for e in training_entries(state, side, faces) if not Path(e["source"]).exists()]
        if gone:
            raise FileNotFoundError(gone[0])
    means = training_means(state, emb, faces=min(faces, 64), crops=False)["frames"]
    best, figures, lid_figures, counts = {}, {}, {}, {}
    for name, (side, other) in DIRECTIONS.items():
        entries = training_entries(state, side, faces)
        counts[side] = len(entries)
        best[name], figs, lid_figs = select(_Direction(model_dir, name, entries, lm, emb, device),
                                            _Identity(emb, means, other, side), lids)
        figures[name] = {f"shift {sh:g} gain {g:g}": f for (sh, g), f in zip(itertools.product(SHIFTS, GAINS), figs)}
        if lids:
            lid_figures[name] = {f"lid gain {g:g}": f for g, f in zip(LID_GAINS, lid_figs)}
    record = dict(cue_shift={k: v["shift"] for k, v in best.items()},
                  cue_gain={k: v["gain"] for k, v in best.items()},
                  cue_calibration={"faces": counts, "figures": figures})
    if lids:
        record["cue_lid_gain"] = {k: v["lid_gain"] for k, v in best.items()}
        record["cue_calibration"]["lid_figures"] = lid_figures
    update_state(model_dir, **record)
    return best
