"""Putting a swapped face back: masks, colour matching, and blending into the frame."""
from __future__ import annotations

import cv2
import numpy as np
from skimage.exposure import match_histograms


def face_mask(kind: str, crop_landmarks: np.ndarray, size: int, erode: float, feather: float) -> np.ndarray:
    """A float32 (size, size) mask in [0, 1] in crop space: the convex hull of the 68 landmarks
    (or the whole crop), shrunk by `erode` and softened by `feather` crop pixels."""
    mask = np.zeros((size, size), np.float32)
    if kind == "hull":
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(crop_landmarks).astype(np.int32)), 1.0)
    else:
        mask[:] = 1.0
    border = max(1, int(round(erode)))       # keep the crop's edge out: nothing to blend there
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
    if erode > 1:
        k = int(round(erode))
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    if feather > 0:
        sigma = feather / 2
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return mask


def match_color(face: np.ndarray, original: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """The swapped face (uint8 RGB crop) recoloured to the original crop's colours inside the mask."""
    if mode == "none":
        return face
    sel = mask > 0.5
    if sel.sum() < 16:
        return face
    if mode == "hist":
        return match_histograms(face, original, channel_axis=-1).clip(0, 255).astype(np.uint8)
    if mode == "mean":
        f = face.astype(np.float32)
        f += original[sel].mean(0) - f[sel].mean(0)
        return f.clip(0, 255).astype(np.uint8)
    # lab: mean and standard deviation transfer in L*a*b* (Reinhard et al. 2001)
    fl = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
    ol = cv2.cvtColor(original, cv2.COLOR_RGB2LAB).astype(np.float32)
    fm, fs = fl[sel].mean(0), fl[sel].std(0) + 1e-3
    om, os_ = ol[sel].mean(0), ol[sel].std(0) + 1e-3
    out = (fl - fm) / fs * os_ + om
    return cv2.cvtColor(out.clip(0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def paste(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, transform: np.ndarray,
          blend: str = "feather") -> None:
    """Blend the crop `face` (with its crop-space `mask`) into `frame` in place, through the
    inverse of `transform` (frame -> crop). Only the face's bounding region is touched."""
    size = face.shape[0]
    inv = cv2.invertAffineTransform(transform)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
    h, w = frame.shape[:2]
    x0, y0 = np.floor(corners.min(0)).astype(int).clip(0, [w, h])
    x1, y1 = np.ceil(corners.max(0)).astype(int).clip(0, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    m = transform.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)     # ROI pixel -> crop coordinates
    roi_size = (int(x1 - x0), int(y1 - y0))
    warped = cv2.warpAffine(face, m, roi_size, flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, m, roi_size, flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    roi = frame[y0:y1, x0:x1]
    if blend == "seamless":
        binary = (alpha > 0.5).astype(np.uint8) * 255
        binary[0, :], binary[-1, :], binary[:, 0], binary[:, -1] = 0, 0, 0, 0
        ys, xs = np.nonzero(binary)
        if len(xs) > 16:
            bx0, bx1, by0, by1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            center = (int(x0 + (bx0 + bx1) // 2), int(y0 + (by0 + by1) // 2))
            frame[:] = cv2.seamlessClone(np.ascontiguousarray(warped[by0:by1, bx0:bx1]), frame,
                                         np.ascontiguousarray(binary[by0:by1, bx0:bx1]), center,
                                         cv2.NORMAL_CLONE)
            return
    a = alpha[..., None]
    roi[:] = (warped * a + roi * (1 - a)).round().astype(np.uint8)
