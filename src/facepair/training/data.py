"""Face sets -> training batches: a fixed held-out split, per-rank shards, augmentation, and
batches prepared by background threads ahead of the training step.

Every batch is a pure function of (seed, reshuffles, step): resuming, rolling back or prefetching never
changes which faces a step sees, so a resumed run continues exactly as an uninterrupted one.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..faces.faceset import crop_marks, load_faces
from ..faces.landmarks import PARTS, eyelid_gap
from ..model.autoencoder import cue_features
from ..model.presets import ModelConfig, TrainConfig
from ..runtime import to_tensor


@dataclass
class Side:
    """One identity's faces: training shard of this rank, held-out validation faces."""
    train: np.ndarray          # (N, S, S, 3) uint8 RGB
    val: np.ndarray
    val_files: list[str]
    sets: list[dict]           # per face-set folder: path, faces, fingerprint
    marks: np.ndarray          # (N, 68, 2) float32 landmarks of the training faces, crop pixels
    val_marks: np.ndarray
    clips: np.ndarray | None = None   # temporal models: (N, k + 1) each training face's k previous
                                      # faces, earliest first, then itself, as indices in `pool`
    pool: np.ndarray | None = None    # every rank's training faces (clips reach across shards)
    pool_marks: np.ndarray | None = None
    stride: int = 1                   # frames between consecutive faces of the face sets


def clips_of(entries: list[dict], k: int) -> tuple[np.ndarray, int]:
    """((N, k + 1) indices: each face's k previous faces in the same source, earliest first,
    then itself; the earliest available is repeated where a face has fewer, or where the frames
    jump by more than twice the usual step; the usual step in frames). Faces of photos (no
    frame) stand alone."""
    order = sorted(range(len(entries)), key=lambda i: (entries[i]["source"], entries[i].get("frame", 0)))
    steps = [entries[j].get("frame", 0) - entries[i].get("frame", 0) for i, j in zip(order, order[1:])
             if entries[i]["source"] == entries[j]["source"]]
    steps = [d for d in steps if d > 0]
    stride = int(np.median(steps)) if steps else 1
    clips = np.empty((len(entries), k + 1), int)
    for pos, i in enumerate(order):
        run = [i]                                       # i and its previous faces, latest first
        while len(run) <= k and pos - len(run) >= 0:
            q, last = order[pos - len(run)], run[-1]
            gap = entries[last].get("frame", 0) - entries[q].get("frame", 0)
            if entries[q]["source"] != entries[i]["source"] or not 0 < gap <= 2 * stride:
                break
            run.append(q)
        run += [run[-1]] * (k + 1 - len(run))
        clips[i] = run[::-1]
    return clips, stride


def holdout(n: int, cfg: TrainConfig, val: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) of n faces in video order.

    Validation is `val_blocks` contiguous blocks spread evenly over the faces, so it samples the
    whole footage (one block at the end can catch a speaker who hardly moves). Neighbouring video
    frames are near-duplicates, so a random split would leak them into training; for the same
    reason `val_gap` faces either side of each validation face are left out of training too.
    `val`: validation indices kept from earlier (a resume); only the gaps are made here."""
    if val is None:
        n_val = min(cfg.val_max, max(1, round(n * cfg.val_fraction))) if n >= 4 else 0
        k = max(1, min(cfg.val_blocks, n_val))
        sizes = np.diff(np.linspace(0, n_val, k + 1).round().astype(int))
        starts = [int(np.clip(round((j + 0.5) * n / k - size / 2), 0, n - size))
                  for j, size in enumerate(sizes)]
        val = np.array([i for start, size in zip(starts, sizes) for i in range(start, start + size)], int)
    if len(val) == 0:
        return np.arange(n), np.arange(0)
    blocks = max(1, min(cfg.val_blocks, len(val)))
    gap = min(cfg.val_gap, n // (20 * blocks))         # the gaps cost at most a tenth of the faces
    drop = np.zeros(n, bool)
    for i in val:
        drop[max(0, i - gap):i + gap + 1] = True
    return np.flatnonzero(~drop), np.asarray(val)


def load_side(folders, size: int | None, cfg: TrainConfig, rank: int = 0, world: int = 1,
              val_files: list[str] | None = None, context: int = 0) -> Side:
    """One side's faces, split. `val_files`: the validation faces of an earlier run (a resume),
    which stay held out whatever changed in the face sets; where none of them is left, the faces
    are split anew. `context` > 0: each training face's clip of previous training faces too."""
    images, entries, sets = load_faces(folders, size)
    marks = crop_marks(entries)
    keys = [f"{e['faceset']}/{e['file']}" for e in entries]
    kept = None
    if val_files:
        wanted = set(val_files)
        kept = np.array([i for i, k in enumerate(keys) if k in wanted], int)
    train, val = holdout(len(images), cfg, kept if kept is not None and len(kept) else None)
    pool, pool_marks = images[train], marks[train]
    side = Side(train=pool[rank::world], val=images[val], val_files=[keys[i] for i in val],
                sets=sets, marks=pool_marks[rank::world], val_marks=marks[val])
    if context:
        clips, side.stride = clips_of([entries[i] for i in train], context)
        side.clips, side.pool, side.pool_marks = clips[rank::world], pool, pool_marks
    return side


def cue_stats(marks_a: np.ndarray, marks_b: np.ndarray, cfg: ModelConfig):
    """A landmark-cue model's buffers from the training faces' landmarks (N, 68, 2): the mask
    hiding the cue points' region from the encoder (the union of every face's hull of them, a
    hull per face part among them (mouth, each eye, ...), both sides, widened by size/16 and
    feathered), each side's mean of the cue (model/autoencoder.cue_features), (2, W), and the
    spread about those means over both sides, (W,)."""
    size, points = cfg.size, cfg.cue_points
    groups = [g for g in ([i for i in part if i in points] for part in PARTS) if g]
    mask = np.zeros((size, size), np.float32)
    for m in np.concatenate([marks_a, marks_b]):
        for g in groups:
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(m[g]).astype(np.int32)), 1.0)
    k = max(1, size // 16)
    mask = cv2.dilate(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    mask = np.maximum(mask, cv2.GaussianBlur(mask, (2 * k + 1, 2 * k + 1), 0))
    feats = [cue_features(torch.from_numpy(np.asarray(m, np.float32)), cfg) for m in (marks_a, marks_b)]
    mean = torch.stack([f.mean(0) for f in feats])
    std = torch.cat([f - mu for f, mu in zip(feats, mean)]).std(0, unbiased=False).clamp(min=1e-3)
    return torch.from_numpy(mask[None, None]), mean, std


def eye_repeats(marks: np.ndarray, most: int) -> np.ndarray:
    """(N,) how many times each face comes up per epoch: in inverse proportion to how common its
    eyelid gap is (bins a tenth of the side's median gap wide; the commonest bin once), at most
    `most`. Blinks are a few percent of a talking head's frames, so without this the decoders
    rarely draw a closed eye."""
    if most <= 1 or len(marks) == 0:
        return np.ones(len(marks), int)
    gap = eyelid_gap(marks)
    bins = np.floor(gap / max(float(np.median(gap)), 1e-6) / 0.1).astype(int)
    counts = np.bincount(bins)
    return np.clip(np.round(counts.max() / counts[bins]), 1, most).astype(int)


def _random_warp(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The classic deepfake random warp: a 5x5 grid of control points jittered and smoothly
    interpolated into a dense displacement field (the target stays unwarped)."""
    s = img.shape[0]
    offsets = rng.normal(0, s * 0.02, size=(2, 5, 5)).astype(np.float32)
    flow = [cv2.resize(o, (s, s), interpolation=cv2.INTER_CUBIC) for o in offsets]
    gx, gy = np.meshgrid(np.arange(s, dtype=np.float32), np.arange(s, dtype=np.float32))
    return cv2.remap(img, gx + flow[0], gy + flow[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _augment(img: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) for one face; the seed recipe uses none of this (input = target = face)."""
    s = img.shape[0]
    if cfg.flip and rng.random() < 0.5:
        img = img[:, ::-1]
    if cfg.affine:
        m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-10, 10), rng.uniform(0.95, 1.05))
        m[:, 2] += rng.uniform(-0.05, 0.05, 2) * s
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), borderMode=cv2.BORDER_REFLECT)
    if cfg.color:
        f = img.astype(np.float32)
        grey = f.mean(2, keepdims=True)
        f = grey + (f - grey) * rng.uniform(0.8, 1.2)                    # saturation
        f = (f - f.mean()) * rng.uniform(0.8, 1.2) + f.mean()            # contrast
        img = np.clip(f + rng.uniform(-20, 20), 0, 255).astype(np.uint8)  # brightness
    img = np.ascontiguousarray(img)
    return (_random_warp(img, rng) if cfg.warp else img), img


class Batches:
    """Batch for step s of both sides, built in `workers` background threads, `depth` ahead.
    A temporal model's batch is clips of consecutive faces, with each face's previous frames as
    indices in the batch; its marks always come along (the model ignores them without a cue)."""

    def __init__(self, a: Side, b: Side, batch: int, cfg: TrainConfig, seed: int, reshuffles: int = 0,
                 workers: int = 1, depth: int = 4, pin: bool = False, marks: bool = False):
        self.sides, self.batch, self.cfg = (a.train, b.train), batch, cfg
        # one epoch's faces per side, rare eye states repeated (eye_repeat 1: each face once)
        self.order = tuple(np.repeat(np.arange(len(s.train)), eye_repeats(s.marks, cfg.eye_repeat))
                           for s in (a, b))
        self.clips = (a.clips, b.clips) if a.clips is not None else None   # a temporal model
        if self.clips is None:
            self.faces, self.marks = self.sides, (a.marks, b.marks) if marks else None  # a cue model's
        else:          # clips index every rank's faces; a temporal batch always carries marks
            self.faces, self.marks = (a.pool, b.pool), (a.pool_marks, b.pool_marks)
        self.seed, self.reshuffles, self.pin = seed, reshuffles, pin
        self.pool = ThreadPoolExecutor(max(1, workers))
        self.depth, self.pending = depth, {}

    def _indices(self, side: int, step: int) -> np.ndarray:
        # epoch-wise permutations of `order`, so every face is seen once per epoch (a face with a
        # rare eye state, with eye_repeat, up to that many times)
        order, out, pos = self.order[side], [], step * self.batch
        n = len(order)
        while len(out) < self.batch:
            epoch, offset = divmod(pos, n)
            perm = np.random.default_rng([self.seed, self.reshuffles, side, epoch]).permutation(n)
            take = order[perm[offset:offset + self.batch - len(out)]]
            out.extend(take)
            pos += len(take)
        return np.array(out)

    def _clips(self, side: int, step: int) -> np.ndarray:
        """Temporal models: the batch as clips of consecutive faces (indices in the side's pool),
        each ending at a face drawn as `_indices` draws them; the last clip cut to fit."""
        k1 = self.clips[side].shape[1]
        ends = self._indices(side, step)[:-(-self.batch // k1)]
        return self.clips[side][ends].reshape(-1)[:self.batch]

    def previous(self) -> torch.Tensor:
        """(batch, k) each face's previous frames in the batch, most recent first (a clip's
        first face repeated where it has fewer)."""
        k1 = self.clips[0].shape[1]
        pos = np.arange(self.batch)
        start = pos - pos % k1
        return torch.from_numpy(np.maximum(pos[:, None] - np.arange(1, k1)[None], start[:, None]))

    def make(self, step: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, self.reshuffles, 7, step])
        tensors, marks = [], []
        for side, faces in enumerate(self.faces):
            idx = self._indices(side, step) if self.clips is None else self._clips(side, step)
            chosen = faces[idx]
            if self.marks is not None:
                marks.append(torch.from_numpy(self.marks[side][idx]))
            if self.cfg.flip or self.cfg.affine or self.cfg.color or self.cfg.warp:
                pairs = [_augment(img, self.cfg, rng) for img in chosen]
                x, y = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
                tensors += [to_tensor(x), to_tensor(y)]
            else:
                t = to_tensor(chosen)
                tensors += [t, t]
        tensors += marks
        if self.clips is not None:
            tensors += [self.previous()] * 2
        if self.pin:
            tensors = [t.pin_memory() for t in tensors]
        return tuple(tensors)    # a_in, a_target, b_in, b_target[, a_marks, b_marks[, a_prev, b_prev]]

    def get(self, step: int):
        for s in range(step, step + self.depth):
            if s not in self.pending:
                self.pending[s] = self.pool.submit(self.make, s)
        for s in [s for s in self.pending if s < step]:
            self.pending.pop(s).cancel()
        return self.pending.pop(step).result()

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
