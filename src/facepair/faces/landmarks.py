"""68-point dlib landmarks, predicted at full resolution inside a detector box."""
from __future__ import annotations

import dlib
import numpy as np

from .detect import model_file

LEFT_EYE = slice(36, 42)     # the subject's right eye (image left)
RIGHT_EYE = slice(42, 48)
INNER_MOUTH_TOP, INNER_MOUTH_BOTTOM = 62, 66


class Landmarker:
    def __init__(self):
        self.predictor = dlib.shape_predictor(model_file("shape_predictor_68_face_landmarks.dat"))

    def __call__(self, rgb: np.ndarray, box) -> np.ndarray:
        """(68, 2) float32 landmarks in frame coordinates."""
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): the centres of both eyes (means of their six landmarks)."""
    return np.stack([landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)])
