"""Who is this? dlib's 128-d face embeddings (ResNet, distance < 0.6 = same person)."""
from __future__ import annotations

import cv2
import dlib
import numpy as np

from ..errors import FacepairError, UnreadableMedia
from ..media.image import expand_inputs, read_image
from .detect import dlib_model, largest_first
from .embed_helper import HEADER, REPLY, read_exactly



class Embedder:
    def __init__(self):
        self.net = dlib_model("embedding")

    def from_landmarks(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Embedding of a face in a frame, aligned by dlib from its 68 landmarks."""
        return np.array(self.net.compute_face_descriptor(rgb, _shape(landmarks)), dtype=np.float32)

    @staticmethod
    def chip(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150 px chip that from_landmarks embeds (to embed later, with from_aligned)."""
        return dlib.get_face_chip(rgb, _shape(landmarks), size=150, padding=0.25)

    def from_aligned(self, chip: np.ndarray) -> np.ndarray:
        """Embedding of a chip cut by `chip`: the same as from_landmarks on its frame."""
        return np.array(self.net.compute_face_descriptor(chip), dtype=np.float32)

    def from_chip(self, crop: np.ndarray) -> np.ndarray:
        """Embedding of an already aligned face crop, upscaled to dlib's 150 px chip."""
        chip = cv2.resize(crop, (150, 150), interpolation=cv2.INTER_CUBIC)
        return np.array(self.net.compute_face_descriptor(np.ascontiguousarray(chip)), dtype=np.float32)


class HelperEmbedder:
    """Embeds aligned chips in a process of its own, beside the caller's own work: dlib's
    descriptor holds the GIL (two threads embed no faster than one, measured), a second process
    does not. The process is `python -m facepair.faces.embed_helper`, fed through pipes;
    `submit(chip)` writes the chip at once, in the caller's thread (a process pool's feeder
    thread waited for the GIL until the caller's own dlib call had ended: measured, no overlap),
    and gives a pending result whose `result()` is what Embedder.from_aligned gives (the same
    network, the same numbers). One chip in flight at a time. A process that fails, or gives
    no answer within TIMEOUT, is stopped, and its chips are embedded here. `start` gives None
    where no process can be started."""

    TIMEOUT = 60.0          # seconds for one chip's answer (about 0.06 s when all is well)

    def __init__(self, process):
        self.process, self.local = process, None
        self.waiting = None             # the _Pending whose answer the process owes

    @classmethod
    def start(cls):
        import subprocess
        import sys
        try:
            return cls(subprocess.Popen([sys.executable, "-m", "facepair.faces.embed_helper"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL))
        except Exception:  # noqa: BLE001 - no helper: every chip is embedded here
            return None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def submit(self, chip: np.ndarray) -> "_Pending":
        pending = _Pending(self, np.ascontiguousarray(chip, dtype=np.uint8))
        if not self.alive:
            return pending
        try:
            if self.waiting is not None:        # an answer nobody asked for: read and dropped
                self.waiting = None             # (its chip, if asked later, is embedded here)
                self._answer()
            h, w = pending.chip.shape[:2]
            self.process.stdin.write(np.array([h, w], "<u2").tobytes() + pending.chip.tobytes())
            self.process.stdin.flush()
            self.waiting = pending
        except (OSError, ValueError, EOFError, TimeoutError):
            self._stop()
        return pending

    def _answer(self) -> np.ndarray:
        import select
        out = self.process.stdout
        if not select.select([out], [], [], self.TIMEOUT)[0]:
            raise TimeoutError
        return np.frombuffer(read_exactly(out, REPLY), "<f4").copy()

    def here(self, chip: np.ndarray) -> np.ndarray:
        self.local = self.local or Embedder()
        return self.local.from_aligned(chip)

    def _stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.waiting = None

    def close(self):
        if self.alive:
            try:
                self.process.stdin.write(bytes(HEADER))      # 0 x 0: the end
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except Exception:  # noqa: BLE001 - it goes either way
                self.process.kill()
                self.process.wait()


class _Pending:
    """A chip given to a HelperEmbedder; `result()` its embedding, from the helper's process
    where that owes the answer, else embedded here."""

    def __init__(self, helper: HelperEmbedder, chip: np.ndarray):
        self.helper, self.chip = helper, chip

    def result(self) -> np.ndarray:
        helper = self.helper
        if helper.waiting is self:
            helper.waiting = None
            try:
                got = helper._answer()
                if np.isfinite(got).all():
                    return got
            except (OSError, ValueError, EOFError, TimeoutError):
                helper._stop()
        return helper.here(self.chip)


def _shape(landmarks: np.ndarray):
    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)


def reference_embeddings(photos, detector, landmarker, embedder, exactly_one: bool = False) -> np.ndarray:
    """Embeddings of the largest face in each reference photo (a photo without one is an error;
    with exactly_one, so is a photo with several: it could show someone else)."""
    refs = []
    for p in expand_inputs(photos):
        try:
            img = read_image(p)
        except UnreadableMedia as e:
            raise FacepairError(f"identity photo unreadable: {e}") from None
        boxes = detector(img)
        if not boxes:
            raise FacepairError(f"no face found in identity photo {p}")
        if exactly_one and len(boxes) > 1:
            raise FacepairError(f"reference photo {p} shows {len(boxes)} faces: give a photo with "
                                "exactly one face (or the person's face set)")
        box = largest_first(boxes)[0]
        refs.append(embedder.from_landmarks(img, landmarker(img, box)))
    return np.stack(refs)


def distance(embeddings: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Distance of each embedding to its nearest reference."""
    e = np.atleast_2d(embeddings)
    return np.linalg.norm(e[:, None, :] - np.atleast_2d(refs)[None], axis=2).min(1)
