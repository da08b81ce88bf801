"""Who is this? dlib's 128-d face embeddings (ResNet, distance < 0.6 = same person)."""
from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np

from ..errors import FacepairError, UnreadableMedia
from ..media.image import expand_inputs, is_image, read_image
from .detect import largest_first, model_file
from .faceset import INDEX, crop_marks, load_index, present, read_crop

FACESET_REFS = 24        # a face set's references: this many of its faces, evenly spread



class Embedder:
    """dlib's face embeddings, computed by dlib's network in torch (descriptor.py: the same
    numbers, 12 to 27 times faster than dlib-bin's own)."""

    def __init__(self):
        from .descriptor import MODEL_FILE, descriptor_net      # torch: only where faces are embedded
        self.net = descriptor_net(model_file(MODEL_FILE))

    def from_landmarks(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Embedding of a face in a frame, aligned by dlib from its 68 landmarks."""
        return self.from_aligned(self.chip(rgb, landmarks))

    @staticmethod
    def chip(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150 px chip that dlib's compute_face_descriptor cuts from a frame by 68 landmarks
        (to embed later, with from_aligned or many)."""
        return dlib.get_face_chip(rgb, _shape(landmarks), size=150, padding=0.25)

    def from_aligned(self, chip: np.ndarray) -> np.ndarray:
        """Embedding of a chip cut by `chip`: the same as from_landmarks on its frame."""
        return self.net(chip)[0]

    def many(self, chips) -> np.ndarray:
        """(N, 128) embeddings of chips cut by `chip` (or `upscaled`), in batches (2.1 ms a chip
        against 4.8)."""
        return self.net(np.asarray(chips, np.uint8))

    @staticmethod
    def upscaled(crop: np.ndarray) -> np.ndarray:
        """An already aligned face crop as dlib's 150 px chip."""
        return cv2.resize(crop, (150, 150), interpolation=cv2.INTER_CUBIC)

    def from_chip(self, crop: np.ndarray) -> np.ndarray:
        """Embedding of an already aligned face crop, upscaled to dlib's 150 px chip."""
        return self.from_aligned(self.upscaled(crop))


def _shape(landmarks: np.ndarray):
    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)


def faceset_embeddings(folder: Path, embedder) -> np.ndarray:
    """(K, 128) embeddings of FACESET_REFS faces of a face set, evenly spread over it."""
    meta = load_index(folder)
    faces = present(folder, meta["faces"])
    if not faces:
        raise FacepairError(f"face set {folder} holds no faces")
    pick = [faces[i] for i in np.linspace(0, len(faces) - 1, min(FACESET_REFS, len(faces))).astype(int)]
    crops = [(read_crop(folder, e), m) for e, m in zip(pick, crop_marks(pick))]
    embeddings = [embedder.from_landmarks(c, m) for c, m in crops if c is not None]  # (damaged: passed over)
    if not embeddings:
        raise FacepairError(f"face set {folder} holds no readable faces")
    return np.stack(embeddings)


def reference_embeddings(photos, detector, landmarker, embedder, exactly_one: bool = False) -> np.ndarray:
    """Embeddings of the largest face in each reference photo (a photo without one is an error;
    with exactly_one, so is a photo with several: it could show someone else): photos, folders
    of them (their other files passed over) and face sets (faceset_embeddings)."""
    refs, photos = [], [Path(p) for p in photos]
    for p in [p for p in photos if (p / INDEX).is_file()]:
        refs += list(faceset_embeddings(p, embedder))
    for p in expand_inputs([p for p in photos if not (p / INDEX).is_file()], keep=is_image):
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
    if not refs:
        raise FacepairError("no identity photo found (an empty folder?)")
    return np.stack(refs)


def distance(embeddings: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Distance of each embedding to its nearest reference."""
    e = np.atleast_2d(embeddings)
    return np.linalg.norm(e[:, None, :] - np.atleast_2d(refs)[None], axis=2).min(1)
