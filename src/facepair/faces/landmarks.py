"""68-point dlib landmarks, predicted at full resolution inside a detector box, and all the
geometry read off them (index sets, eye centres, inter-ocular distance, mouth opening)."""
from __future__ import annotations

import numpy as np

LEFT_EYE = slice(36, 42)     # the subject's right eye (image left)
RIGHT_EYE = slice(42, 48)
MOUTH = tuple(range(48, 68))                 # the 20 mouth points
INNER_TOP, INNER_BOTTOM = [61, 62, 63], [67, 66, 65]   # inner lips, facing pairs
LID_TOP, LID_BOTTOM = [37, 38, 43, 44], [41, 40, 47, 46]  # eyelids, facing pairs (both eyes)
INNER_FACE = slice(17, 68)                   # brows, nose, eyes, mouth: not the jaw line
EYES = tuple(range(36, 48))                  # the 12 eye points (both eyes)
PARTS = [range(0, 17), range(17, 22), range(22, 27), range(27, 36), range(36, 42), range(42, 48),
         range(48, 68)]                      # jaw, brows, nose, each eye, mouth


class Landmarker:
    def __init__(self):
        import dlib                       # here, so the geometry below loads no dlib
        from .detect import dlib_model
        self.predictor = dlib_model("landmarks")
        self.rectangle = dlib.rectangle

    def __call__(self, rgb: np.ndarray, box) -> np.ndarray:
        """(68, 2) float32 landmarks in frame coordinates."""
        rect = self.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): the centres of both eyes (means of their six landmarks)."""
    return np.stack([landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)])


def inter_ocular(marks: np.ndarray) -> np.ndarray:
    """(N,) distance between the eye centres of (N, 68, 2) landmarks."""
    return np.linalg.norm(marks[:, LEFT_EYE].mean(1) - marks[:, RIGHT_EYE].mean(1), axis=1)


def mouth_opening(marks: np.ndarray) -> np.ndarray:
    """(N,) inner-lip gap over the inter-ocular distance."""
    gap = np.linalg.norm(marks[:, INNER_TOP] - marks[:, INNER_BOTTOM], axis=2).mean(1)
    return gap / inter_ocular(marks)


def eyelid_gap(marks: np.ndarray) -> np.ndarray:
    """(N,) eyelid gap (both eyes) over the inter-ocular distance: falls to ~0 in a blink."""
    gap = np.linalg.norm(marks[:, LID_TOP] - marks[:, LID_BOTTOM], axis=2).mean(1)
    return gap / inter_ocular(marks)
