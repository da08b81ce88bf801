"""Alignment: a similarity transform from 68 landmarks to a fixed mean-face template.

The template is dlib's mean face shape for landmarks 17-67 (brows, nose, eyes, mouth; the jaw line
is left out because it moves with pose), in unit coordinates, as used by the original deepfakes
alignment. `padding` is the share of the crop kept around the template on each side.
"""
from __future__ import annotations

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from .options import DEFAULT_PADDING

MEAN_FACE = np.array([
    (0.000213256, 0.106454), (0.0752622, 0.038915), (0.18113, 0.0187482), (0.29077, 0.0344891),
    (0.393397, 0.0773906), (0.586856, 0.0773906), (0.689483, 0.0344891), (0.799124, 0.0187482),
    (0.904991, 0.038915), (0.98004, 0.106454), (0.490127, 0.203352), (0.490127, 0.307009),
    (0.490127, 0.409805), (0.490127, 0.515625), (0.36688, 0.587326), (0.426036, 0.609345),
    (0.490127, 0.628106), (0.554217, 0.609345), (0.613373, 0.587326), (0.121737, 0.216423),
    (0.187122, 0.178758), (0.265825, 0.179852), (0.334606, 0.231733), (0.260918, 0.245099),
    (0.182743, 0.244077), (0.645647, 0.231733), (0.714428, 0.179852), (0.793132, 0.178758),
    (0.858516, 0.216423), (0.79751, 0.244077), (0.719335, 0.245099), (0.254149, 0.780233),
    (0.340985, 0.745405), (0.428858, 0.727388), (0.490127, 0.742578), (0.551395, 0.727388),
    (0.639268, 0.745405), (0.726104, 0.780233), (0.642159, 0.864805), (0.556721, 0.902192),
    (0.490127, 0.909281), (0.423532, 0.902192), (0.338094, 0.864805), (0.290379, 0.784792),
    (0.428096, 0.778746), (0.490127, 0.785343), (0.552157, 0.778746), (0.689874, 0.784792),
    (0.553364, 0.824182), (0.490127, 0.831803), (0.42689, 0.824182)], dtype=np.float64)
TEMPLATE_FROM = 17            # MEAN_FACE[i] is landmark TEMPLATE_FROM + i


def template(size: int, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """The template's 51 points in crop pixel coordinates."""
    return (MEAN_FACE * (1 - 2 * padding) + padding) * size


def align_transform(landmarks: np.ndarray, size: int, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, translation): frame -> crop coordinates,
    least-squares fit (Umeyama) of landmarks 17-67 onto the template."""
    tf = SimilarityTransform.from_estimate(landmarks[TEMPLATE_FROM:].astype(np.float64),
                                           template(size, padding))
    return tf.params[:2].copy()


def box_transform(box, size: int) -> np.ndarray:
    """2x3 transform of the seed's plain crop: the detector box stretched to size x size."""
    x0, y0, x1, y1 = box
    sx, sy = size / max(x1 - x0, 1), size / max(y1 - y0, 1)
    return np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], dtype=np.float64)


def warp_crop(frame: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """Cut the crop out of the frame with the 2x3 transform (frame -> crop). When the crop is
    smaller than the face in the frame, warp at the frame's own resolution first and shrink with
    area averaging (warpAffine alone would alias)."""
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if scale >= 0.9:
        return cv2.warpAffine(frame, transform, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    native = int(np.ceil(size / scale))
    k = native / size
    m = transform * k
    m[:, 2] += 0.5 * (k - 1)                     # pixel centres line up after the area resize
    big = cv2.warpAffine(frame, m, (native, native),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def map_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 2x3 transform."""
    return points @ transform[:, :2].T + transform[:, 2]
