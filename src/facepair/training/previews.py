"""Preview grids: per row one validation face of A and of B, columns A, A->A, A->B, B, B->B, B->A.
They hold swapped faces, so they are labelled as every output is (watermark, tag, manifest)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..media.files import atomic_write_bytes
from ..provenance import label

COLUMNS = ("A", "A->A", "A->B", "B", "B->B", "B->A")


def _images(t: torch.Tensor) -> np.ndarray:
    return (t.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


@torch.no_grad()
def grid(model, val_a: torch.Tensor, val_b: torch.Tensor, marks_a=None, marks_b=None,
         rows: int = 6) -> np.ndarray:
    """An RGB uint8 image of the grid (model in eval mode, faces (N, 3, S, S) in [0, 1], and
    their landmarks (N, 68, 2) for a model with a landmark cue)."""
    n = min(rows, len(val_a), len(val_b))
    a, b = val_a[:n], val_b[:n]
    ma, mb = (None if m is None else m[:n] for m in (marks_a, marks_b))
    cols = [a, model.swap(a, "a", ma, "a"), model.swap(a, "b", ma, "a"),
            b, model.swap(b, "b", mb, "b"), model.swap(b, "a", mb, "b")]
    cols = [_images(c) for c in cols]
    return np.concatenate([np.concatenate(list(c), axis=0) for c in cols], axis=1)


def save(folder: Path, step: int, rgb: np.ndarray, keep: int) -> None:
    """The grid as previews/step-NNNNNNNN.png and previews/latest.png; only the newest `keep`
    numbered grids stay, so a long run cannot fill the disk."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:08d}.png"
    data = encode(path, rgb)                                # labelled and signed once, for both
    atomic_write_bytes(path, data)
    atomic_write_bytes(folder / "latest.png", data)
    numbered = sorted(folder.glob("step-*.png"))
    for old in numbered[:max(0, len(numbered) - keep)]:
        old.unlink(missing_ok=True)


def encode(path: Path, rgb: np.ndarray, scale: int = 2) -> bytes:
    """The grid, enlarged `scale` times, as a labelled PNG file's bytes (zlib at its fastest: a
    preview is written every few seconds in the app, and replaced)."""
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return label.image_bytes(path, big, png_level=1)
