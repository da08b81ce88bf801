"""Who is who in a swap with several people (`swap --map PHOTO=MODEL_DIR ...`, and `--identity`):
each entry's reference faces (a photo with one face, or a face set), and the entry each face
followed over frames belongs to.

A face is embedded (dlib's face descriptor) each time the detector finds it, and its track keeps
the sum of its distances to every entry's nearest reference, so one profile view or a blink
does not move it to another model. Its entry: the nearest on average, if within the threshold
(`--threshold`, default 0.6, dlib's own) and nearer than the next entry by MARGIN; else none
(it passes through):
'unmatched' when no entry is within the threshold, 'ambiguous' when two are."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FacepairError
from ..faces.identity import Embedder, faceset_embeddings, reference_embeddings

MARGIN = 0.08            # the nearest entry must be this much nearer than the next (mean distance)
UNMATCHED, AMBIGUOUS = "unmatched", "ambiguous"


def parse_map(text: str) -> tuple[str, str]:
    """'PHOTO=MODEL_DIR' -> (PHOTO, MODEL_DIR); a one-line error otherwise."""
    ref, sep, model = text.rpartition("=")
    if not sep or not ref or not model:
        raise FacepairError(f"bad --map '{text}': write PHOTO=MODEL_DIR (a photo of the person, "
                            "or their face set, = the model that swaps them)")
    return ref, model


class People:
    """The references of each entry, and the rule that assigns a followed face to one."""

    def __init__(self, refs: list, detector, landmarker, threshold: float):
        """refs: per entry, a photo or a face-set folder (or a list of photos: --identity)."""
        self.embedder, self.threshold = Embedder(), threshold
        self.refs = [self._reference(r, detector, landmarker) for r in refs]
        for i in range(len(self.refs)):
            for j in range(i):
                d = np.linalg.norm(self.refs[i][:, None] - self.refs[j][None], axis=2).min()
                if d <= threshold:
                    raise FacepairError(f"--map entries {j + 1} and {i + 1} show the same person "
                                        f"(face distance {d:.2f}, within {threshold:g}): give "
                                        "each person one entry")

    def _reference(self, ref, detector, landmarker) -> np.ndarray:
        """(K, 128) embeddings of one entry's reference faces: --identity's photos (the largest
        face of each), a face set's faces, or one photo that must show exactly one face."""
        if isinstance(ref, (list, tuple)):
            return reference_embeddings(ref, detector, landmarker, self.embedder)
        p = Path(ref)
        if not p.exists():
            raise FacepairError(f"reference not found: {p}")
        if p.is_dir() and (p / "faceset.json").exists():
            return faceset_embeddings(p, self.embedder)
        if p.is_dir():
            raise FacepairError(f"{p} is a folder but not a face set: give a photo or a face set")
        return reference_embeddings([p], detector, landmarker, self.embedder, exactly_one=True)

    def distances(self, frame: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """(entries,) distance of this face to each entry's nearest reference."""
        e = self.embedder.from_landmarks(frame, marks)
        return np.array([np.linalg.norm(r - e, axis=1).min() for r in self.refs])

    def assign(self, total: np.ndarray, n: int):
        """The entry (index) of a face whose distances to the entries add up to `total` over
        `n` looks, or UNMATCHED / AMBIGUOUS."""
        mean = total / max(n, 1)
        order = np.argsort(mean)
        if mean[order[0]] > self.threshold:
            return UNMATCHED
        if len(order) > 1 and mean[order[1]] - mean[order[0]] < MARGIN:
            return AMBIGUOUS
        return int(order[0])
