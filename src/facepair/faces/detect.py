"""Face detectors behind one interface: `haar` (the seed's OpenCV cascade), `hog` and `cnn` (dlib).

Each returns boxes (x0, y0, x1, y1) in the coordinates of the frame it was given. Detection runs on
a copy downscaled so its longer side is at most `detect_size` px (0: full size): dlib's HOG runs
~3x faster at 1/3 scale on 720p with every face of the sample footage still found.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import cv2
import dlib
import numpy as np

from ..errors import FacepairError
from .options import DETECTORS



def model_file(name: str) -> str:
    """Path of a dlib model file shipped by the `face-recognition-models` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FacepairError("package face-recognition-models is not installed (run `make setup`)")
    path = Path(spec.origin).parent / "models" / name
    if not path.exists():
        raise FacepairError(f"model file missing: {path}")
    return str(path)


_shared, _per_thread = {}, threading.local()


def dlib_model(kind: str):
    """A detector or dlib model, loaded once and kept: `hog`, `cnn`, `haar` or `landmarks`
    (dlib's embedding network runs in torch: descriptor.py). Loading one takes up to a second
    and `evaluate` or a swap builds several users of each. The landmark predictor (100 MB) is
    shared (dlib's shape_predictor_abstract.h: one instance may be used from several threads at
    once); the detectors keep scratch state while they run, so each thread has its own, made
    when the thread first uses it (a swap's reader thread detects; its main thread may never)."""
    cache = _shared if kind == "landmarks" else _per_thread.__dict__
    if kind not in cache:
        make = {"hog": dlib.get_frontal_face_detector,
                "cnn": lambda: dlib.cnn_face_detection_model_v1(model_file("mmod_human_face_detector.dat")),
                "haar": lambda: cv2.CascadeClassifier(
                    str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml")),
                "landmarks": lambda: dlib.shape_predictor(model_file("shape_predictor_68_face_landmarks.dat"))}[kind]
        cache[kind] = make()
    return cache[kind]


class Detector:
    name = "base"

    def __init__(self, detect_size: int = 480):
        self.detect_size = detect_size

    def __call__(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_size / max(h, w)) if self.detect_size else 1.0
        size = (round(w * scale), round(h * scale))
        if min(size) < 1:            # a strip some 1,000 times longer than wide: no face in it
            return []
        small = rgb if scale == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return [tuple(v / scale for v in box) for box in self._detect(small)]

    def _detect(self, rgb):
        raise NotImplementedError


class HaarDetector(Detector):
    name = "haar"

    def _detect(self, rgb):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        found = dlib_model("haar").detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                                    minSize=(24, 24))
        return [(x, y, x + w, y + h) for x, y, w, h in np.asarray(found).reshape(-1, 4)]


class HogDetector(Detector):
    name = "hog"

    def _detect(self, rgb):
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in dlib_model("hog")(rgb, 0)]


class CnnDetector(Detector):
    name = "cnn"

    def __init__(self, detect_size: int = 480):
        super().__init__(detect_size)
        model_file("mmod_human_face_detector.dat")     # a missing file is said now, not mid-work

    def _detect(self, rgb):
        return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
                for d in dlib_model("cnn")(rgb, 0)]


def largest_first(boxes) -> list:
    """Detector boxes (x0, y0, x1, y1), the largest face first."""
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def make_detector(name: str, detect_size: int = 480) -> Detector:
    classes = {"haar": HaarDetector, "hog": HogDetector, "cnn": CnnDetector}
    if name not in classes:
        raise FacepairError(f"unknown detector '{name}' (choose from {', '.join(DETECTORS)})")
    return classes[name](detect_size)
