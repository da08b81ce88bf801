"""Putting a swapped face back: masks, colour matching, and blending into the frame."""
from __future__ import annotations

import cv2
import numpy as np
from skimage.exposure import match_histograms


def face_mask(kind: str, crop_landmarks: np.ndarray, size: int, erode: float, feather: float) -> np.ndarray:
    """A float32 (size, size) mask in [0, 1] in crop space: the convex hull of the 68 landmarks
    (or the whole crop), shrunk by `erode` and softened by `feather` crop pixels (each at most
    half the crop: more wipes or blurs the whole face, and a huge kernel takes minutes)."""
    erode, feather = min(erode, size / 2), min(feather, size / 2)
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


# --color skin: the source's skin colour, at features larger than this share of the crop (1/16:
# 8 px of a 128 px crop, a fifth of the eyes' distance), is carried onto the swapped face
SKIN_SIGMA = 1 / 16
# the face's features, kept out of the skin (landmark index ranges: brows, nose, eyes, mouth)
FEATURES = (range(17, 22), range(22, 27), range(27, 36), range(36, 42), range(42, 48), range(48, 60))


def skin_mask(crop_landmarks: np.ndarray, size: int, mask: np.ndarray) -> np.ndarray:
    """Boolean (size, size): the face's bare skin in crop space: inside the landmark hull (its
    outline itself out) and the --mask (`mask` > 0.5: what an occluder covers is out), less the
    brows, nose, eyes and mouth grown by size/25 px."""
    marks = np.round(crop_landmarks).astype(np.int32)
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(marks), 1)
    parts = np.zeros((size, size), np.uint8)
    for idx in FEATURES:
        cv2.fillConvexPoly(parts, cv2.convexHull(marks[list(idx)]), 1)
    r = max(1, int(round(size / 25)))
    parts = cv2.dilate(parts, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    return (cv2.erode(hull, np.ones((3, 3), np.uint8)) > 0) & (parts == 0) & (mask > 0.5)


def match_color(face: np.ndarray, original: np.ndarray, mask: np.ndarray, mode: str,
                crop_landmarks: np.ndarray | None = None) -> np.ndarray:
    """The swapped face (uint8 RGB crop) recoloured to the original crop's colours inside the
    mask. skin (needs `crop_landmarks`; without them, or with too little bare skin, lab): lab,
    then the difference in colour (a*, b*) between the original's and the face's skin
    (skin_mask), low-passed at SKIN_SIGMA of the crop and spread over the features from the skin
    around them, added to the face: the source's skin colour across the face, no patches of
    another skin's, with the swap's own lightness, features and detail."""
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
    # lab: mean and standard deviation transfer in L*a*b* (Reinhard et al. 2001), in OpenCV's
    # 8-bit L*a*b* scale (linear in L*, a*, b*)
    # (the masked statistics by OpenCV: 3.5x faster than numpy's over the selected pixels)
    fl = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
    ol = cv2.cvtColor(original, cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = sel.astype(np.uint8)
    (fm, fs), (om, os_) = ((m.ravel().astype(np.float32), s.ravel().astype(np.float32) + 1e-3)
                           for m, s in (cv2.meanStdDev(fl, mask=inside), cv2.meanStdDev(ol, mask=inside)))
    out = (fl - fm) / fs * os_ + om
    skin = None if mode != "skin" or crop_landmarks is None else \
        skin_mask(crop_landmarks, face.shape[0], mask)
    if skin is not None and skin.sum() >= 16:
        # the colour (a*, b*; not L*: the light and shade across a face carry its identity:
        # carried over too, they left Reagan recognised in 45 % of a 20-minute model's swaps of
        # obama_clip1 frames instead of lab's 90 %, docs/results.md) where both are skin,
        # spread by normalised convolution (a Gaussian of the masked difference over the
        # Gaussian of the mask: the features take their surroundings' value), at a quarter of
        # the size (the area average takes pores and noise out; about 0.25 ms a face more than
        # lab, against 1.1 ms at full size)
        size = face.shape[0]
        small = (max(1, size // 4),) * 2
        w = skin.astype(np.float32)
        dw = cv2.resize((ol[..., 1:] - out[..., 1:]) * w[..., None], small, interpolation=cv2.INTER_AREA)
        ws = cv2.resize(w, small, interpolation=cv2.INTER_AREA)
        sigma = SKIN_SIGMA * size / 4
        field = cv2.GaussianBlur(dw, (0, 0), sigma) / (cv2.GaussianBlur(ws, (0, 0), sigma)[..., None] + 1e-6)
        out[..., 1:] += cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)
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
    # OpenCV's weighted sum in one pass: 4x as fast as numpy's float arithmetic, the same result
    # but for rounding (1 grey level at 0.13 % of the pixels of a 220 px region, measured)
    roi[:] = cv2.blendLinear(warped, np.ascontiguousarray(roi), alpha, 1 - alpha)


MOST = 0.5      # occlusion: a map covering more of the face than this is not believed


def disagreement(crop: np.ndarray, rebuilt: np.ndarray, hull: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far a face's rebuild by its own decoder is from the crop, per pixel, at half the
    crop's size (S/2 x S/2, float32, in ΔE units), and where the face is there (`hull` > 0.5,
    halved too): both low-passed (sigma S/64 px) and in L*a*b*, the rebuild's overall colour
    cast taken off (the medians of the difference over the face), L* at half weight (shading
    the model misses)."""
    size = crop.shape[0]
    half = (size // 2, size // 2)
    lab = [cv2.cvtColor(cv2.resize(cv2.GaussianBlur(im, (0, 0), size / 64), half, interpolation=cv2.INTER_AREA)
                        .astype(np.float32) / 255, cv2.COLOR_RGB2LAB) for im in (crop, rebuilt)]
    inside = cv2.resize(hull.astype(np.float32), half, interpolation=cv2.INTER_AREA) > 0.5
    diff = lab[0] - lab[1]
    if inside.any():
        diff -= np.median(diff[inside], 0)
    diff[..., 0] *= 0.5
    return np.sqrt((diff ** 2).sum(-1)), inside


def occlusion(crop: np.ndarray, rebuilt: np.ndarray, hull: np.ndarray, prior: np.ndarray | None = None,
              strength: float = 3.0, floor: float = 10.0, grow: float = 2.0) -> np.ndarray:
    """Where something other than the face lies in front of it: a float32 (S, S) map in [0, 1]
    (1: occluded) in crop space, from the source face's own rebuild (the crop through its own
    side's decoder) against the crop. The model can draw only this person's face, so a hand or a
    microphone comes back as skin: a large, local colour disagreement (`disagreement`, at half
    size), less `prior`, what this model's rebuilds normally miss at each pixel of the aligned
    crop (the median over the person's training faces: a highlight it always smears, the
    teeth). A pixel is an occluder where that exceeds the face's median by `strength` robust
    spreads (1.4826 MAD) and by at least `floor` ΔE units, grown (hysteresis) over pixels past
    half that, specks under 0.4 % of the face dropped (`occluders`), holes closed, then (at full
    size) dilated by `grow` px per 128 and softened (`soften`). `hull` (the face mask) bounds
    it: nothing outside it is ever an occluder. A map over more than MOST of the face is
    dropped: a model that cannot rebuild this face at all (barely trained, or far from its
    footage) says nothing about what lies in front of it."""
    found = occluders(crop, rebuilt, hull, prior, strength, floor)
    if found is None:
        return np.zeros(hull.shape, np.float32)
    occ, _, inside = found
    return soften(occ, inside, hull, grow)


def occluders(crop: np.ndarray, rebuilt: np.ndarray, hull: np.ndarray, prior: np.ndarray | None = None,
              strength: float = 3.0, floor: float = 10.0) -> tuple | None:
    """The first half of `occlusion`, at half the crop's size: boolean maps (occluders, weak,
    inside): the connected regions of pixels past the low threshold that hold a pixel past the
    high one (specks dropped), every pixel past the low threshold, and the face. None where the
    face is too small to judge."""
    d, inside = disagreement(crop, rebuilt, hull)
    if inside.sum() < 16:
        return None
    if prior is not None:
        d = np.maximum(d - prior, 0)
    med = float(np.median(d[inside]))
    spread = 1.4826 * float(np.median(np.abs(d[inside] - med))) + 1e-3
    high = max(med + strength * spread, floor)
    low = max(med + strength / 2 * spread, floor / 2)
    strong = (d > high) & inside
    weak = (d > low) & inside
    if not strong.any():
        return np.zeros(inside.shape, bool), weak, inside
    n, labels, stats, _ = cv2.connectedComponentsWithStats(weak.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong])] = True
    keep[stats[:, cv2.CC_STAT_AREA] < 0.004 * inside.sum()] = False
    keep[0] = False
    return keep[labels], weak, inside


def soften(occ: np.ndarray, inside: np.ndarray, hull: np.ndarray, grow: float = 2.0) -> np.ndarray:
    """The second half of `occlusion`: half-size occluders (boolean, `inside` the face) -> the
    float32 (S, S) map: nothing where they are none or cover more than MOST of the face; else
    small holes closed, brought to full size within `hull`, dilated by `grow` px per 128 and
    softened."""
    size = hull.shape[0]
    occ = occ.astype(np.uint8)
    if not occ.any() or occ.sum() > MOST * inside.sum():     # past MOST: the model, not the face
        return np.zeros(hull.shape, np.float32)
    k = max(1, int(round(size / 64)))               # close small holes inside an occluder
    occ = cv2.morphologyEx(occ, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1,) * 2))
    occ = cv2.resize(occ, (size, size), interpolation=cv2.INTER_NEAREST)
    occ[hull <= 0] = 0
    g = max(1, int(round(grow * size / 128)))
    occ = cv2.dilate(occ, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1,) * 2))
    occ = cv2.GaussianBlur(occ.astype(np.float32), (0, 0), g / 2)
    return np.minimum(occ * 1.5, 1.0).astype(np.float32)
