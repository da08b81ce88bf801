"""`facepair evaluate`'s figures as pure maths on arrays (no model, no media: frames.py makes
the arrays, score.py puts them together). The figures themselves are described in score.py.
"""
from __future__ import annotations

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from ..faces.landmarks import INNER_FACE, eyelid_gap, inter_ocular, mouth_opening
from ..swap.compose import FEATURES


def reconstruction(real: np.ndarray, rec: np.ndarray) -> dict:
    a, b = real.astype(np.float64) / 255, rec.astype(np.float64) / 255
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    return {"l1": float(np.abs(a - b).mean()),
            "psnr": float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-10)))),
            "ssim": float(np.mean([ssim(x, y) for x, y in zip(a, b)]))}


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two (H, W, 3) images in [0, 1] as Wang et al. 2004 define it, and as the
    training loss computes it (training/losses.py): 11x11 Gaussian window, sigma 1.5, population
    covariances, the mean over the valid region and the channels."""
    return float(structural_similarity(x, y, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def _corr(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0 or np.std(x) < 1e-9 or np.std(y) < 1e-9:   # a constant
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def expression_figures(ls: np.ndarray, lw: np.ndarray) -> dict:
    """Swaps (landmarks lw) against their sources (ls), both (N, 68, 2): the inner-face
    landmark error (points 17-67: the jaw line is the target's own shape) over the inter-ocular
    distance; the correlation across frames and the spread ratio of the mouth opening; the
    correlation of the eyelid gap (blinks) and the swaps' mean eyelid gap over the sources'."""
    err = np.linalg.norm(ls[:, INNER_FACE] - lw[:, INNER_FACE], axis=2).mean(1) / inter_ocular(ls)
    ms, mw = mouth_opening(ls), mouth_opening(lw)
    es, ew = eyelid_gap(ls), eyelid_gap(lw)
    return {"landmark_error": float(err.mean()), "mouth_corr": _corr(ms, mw),
            "mouth_std_ratio": float(np.std(mw) / max(np.std(ms), 1e-9)),
            "eyelid_corr": _corr(es, ew), "eyelid_ratio": float(np.mean(ew) / max(np.mean(es), 1e-9))}


def face_region(marks: np.ndarray, shape) -> np.ndarray:
    """Boolean (H, W) mask: the convex hull of landmarks 17-67 (frame pixels), eroded 2 px."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(marks[INNER_FACE]).astype(np.int32)), 1)
    return cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)


def detail(rgb: np.ndarray, region: np.ndarray) -> float:
    """Mean |Laplacian| of the grey image inside `region`: the face's fine detail."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[region].mean())


def grid(crops: np.ndarray) -> float:
    """Periodic artefacts of a decoder's upsampling (a grid over the face): in the crops' mean
    power spectrum (grey, Hann-windowed), each frequency of a lattice of quarter-crop cells (the
    first 4 x 4 map of the convolutional decoders; 8 px patches and 2 px upsampling steps are its
    harmonics) against the mean of four neighbouring frequencies; the geometric mean of the
    highest tenth of these ratios (a grid may peak at a few of them only). A smooth natural
    spectrum gives a little over 1; a grid puts peaks on the lattice. Compare swaps with their
    source crops."""
    g = np.asarray(crops, np.float64).mean(-1)
    g -= g.mean((1, 2), keepdims=True)
    s = g.shape[1]
    w = np.hanning(s)
    p = (np.abs(np.fft.fft2(g * np.outer(w, w))) ** 2).mean(0) + 1e-12
    lattice = [(y, x) for y in range(0, s, 4) for x in range(0, s, 4) if y or x]   # step: s / (s/4)
    # neighbours 2 bins away: the Hann window spreads a peak over the adjacent bins, not those
    logs = [np.log(p[y, x] / ((p[(y + 2) % s, x] + p[y - 2, x] + p[y, (x + 2) % s] + p[y, x - 2]) / 4))
            for y, x in lattice]
    return float(np.exp(np.mean(np.sort(logs)[-len(logs) // 10:])))


def gmsd(x: np.ndarray, y: np.ndarray) -> float:
    """Gradient magnitude similarity deviation (Xue et al. 2014) of two RGB uint8 images: 0 for
    equal images, higher for lost or false edges. As the paper: grey, 2x2 mean and downsampling,
    Prewitt gradients, c = 170. Written here: a few lines, where scikit-image has no GMSD and
    piq would bring a second image library for one figure."""
    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        g = cv2.blur(g, (2, 2))[::2, ::2]
        kx = np.array([[1, 0, -1]] * 3, np.float32) / 3
        return np.hypot(cv2.filter2D(g, -1, kx), cv2.filter2D(g, -1, kx.T))
    mx, my = grad(x), grad(y)
    gms = (2 * mx * my + 170) / (mx ** 2 + my ** 2 + 170)
    return float(gms.std())


ID_BOUND = 0.5      # a swap counts as the target only this near its mean embedding (same person: < 0.6)


def id_figures(e: np.ndarray, target: np.ndarray, source: np.ndarray) -> dict:
    """Swaps' embeddings e (N, 128) against the target's and the source's mean embeddings (from
    training faces): the share nearer the target than the source *and* within ID_BOUND of the
    target (`id_rate`); the forced choice alone (`id_forced_rate`), which a blob passes; the
    mean distance to the target (`id_dist`)."""
    d_t, d_s = np.linalg.norm(e - target, axis=1), np.linalg.norm(e - source, axis=1)
    return {"id_rate": float(np.mean((d_t < d_s) & (d_t <= ID_BOUND))),
            "id_forced_rate": float(np.mean(d_t < d_s)), "id_dist": float(np.mean(d_t))}


def identity(e: dict, means: dict) -> dict:
    """ID figures of swaps from dlib embeddings {"a", "b", "a2b", "b2a": (N, 128)} against each
    side's mean over its training faces `means` {"a", "b"}; real faces are the sanity check."""
    out = {}
    for name, (src, tgt) in {"a2b": "ab", "b2a": "ba", "real_a": "ba", "real_b": "ab"}.items():
        f = id_figures(e[name.removeprefix("real_")], means[tgt], means[src])
        out.update({f"id_rate_{name}": f["id_rate"], f"id_forced_rate_{name}": f["id_forced_rate"]})
    for faces, side in (("a2b", "b"), ("a2b", "a"), ("b2a", "a"), ("b2a", "b"), ("a", "a"), ("b", "b")):
        name = f"dist_{'real_' * (len(faces) == 1)}{faces}_to_{side}"
        out[name] = float(np.linalg.norm(e[faces] - means[side], axis=1).mean())
    return out


def jitter(marks: list) -> float:
    """Landmark jitter of a video: the mean size of the frame-to-frame change of motion (second
    difference) of the inner-face points 17-67, over the inter-ocular distance, on every three
    consecutive frames that all have landmarks (None: no face). Steady motion scores 0; shaking
    scores high."""
    i = INNER_FACE
    acc = [np.linalg.norm(a[i] - 2 * b[i] + c[i], axis=1).mean() / inter_ocular(b[None])[0]
           for a, b, c in zip(marks, marks[1:], marks[2:]) if a is not None and b is not None and c is not None]
    return float(np.mean(acc)) if acc else float("nan")


# ---- how the swapped face sits in its frame (issue: "swaps that sit in the frame") -----------
BAND = 0.15          # the blend band's half-width around the face's outline, in inter-ocular distances
SKIN_AB, SKIN_L = 10.0, 25.0   # outside pixels counted as skin: a*b* within 10, L* within 25 of the face's


def composite_regions(marks: np.ndarray, shape) -> dict:
    """Boolean (H, W) masks around a face with these 68 landmarks (frame pixels), with b =
    BAND x the inter-ocular distance:
    - band: the ring b/3 to 1.5b inside the outline of the landmark hull (jaw and brows; what
      swap's mask follows): where the swapped face fades into the frame, clear of the outline's
      own edge (jaw against neck or background);
    - inside / outside: the rings b to 3b inside and outside that outline, below the eyes (the
      cheeks and jaw inside; neck, ears, background outside: skin is picked out by colour);
    - skin: the face inside the hull less b, without the eyes, brows, nose and mouth (cheeks,
      chin, forehead between the brows)."""
    b = max(2, int(round(BAND * inter_ocular(marks[None])[0])))
    hull = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(marks).astype(np.int32)), 1)

    def grown(mask, r):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(r) + 1, 2 * abs(r) + 1))
        return (cv2.dilate(mask, k) if r > 0 else cv2.erode(mask, k)).astype(bool)

    below = np.zeros(shape[:2], bool)
    below[int(marks[36:48, 1].max()) + b:] = True
    parts = np.zeros(shape[:2], np.uint8)
    for idx in FEATURES:
        cv2.fillConvexPoly(parts, cv2.convexHull(np.round(marks[list(idx)]).astype(np.int32)), 1)
    return {"band": grown(hull, -max(1, b // 3)) & ~grown(hull, -3 * b // 2),
            "inside": grown(hull, -b) & ~grown(hull, -3 * b) & below,
            "outside": grown(hull, 3 * b) & ~grown(hull, b) & below,
            "skin": grown(hull, -b) & ~grown(parts, b)}


BORDER_POINTS = (2, 5, 8, 11, 14)     # jaw landmarks: the cheeks, the jaw's corners, the chin


def border_strip(source: np.ndarray, swapped: np.ndarray, marks: np.ndarray) -> np.ndarray | None:
    """Full-resolution crops of the face's outline where the swap fades into the frame, for the
    eye: squares of 0.8 inter-ocular distances centred on BORDER_POINTS of the jaw, the source's
    above the swap's, side by side (uint8 RGB); None where the face reaches the frame's edge."""
    side = max(8, int(round(0.8 * inter_ocular(marks[None])[0])))
    h, w = source.shape[:2]
    tiles = []
    for i in BORDER_POINTS:
        x, y = (int(round(v)) - side // 2 for v in marks[i])
        if x < 0 or y < 0 or x + side > w or y + side > h:
            return None
        tiles.append(np.concatenate([source[y:y + side, x:x + side], swapped[y:y + side, x:x + side]], 0))
    gap = np.full((2 * side, 2, 3), 255, np.uint8)
    return np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], 1)


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab
    return rgb2lab(rgb.astype(np.float32) / 255).astype(np.float32)


def composite(source: np.ndarray, swapped: np.ndarray, marks: np.ndarray) -> dict | None:
    """How a swapped frame's face sits in it, each against the same figure on the source frame
    (the face's landmarks `marks`, found on the source); None where the regions are too small:
    - skin_tone: CIE ΔE2000 between the mean colour of the face's skin just inside its outline
      and of the frame's skin just outside it (pixels of the outer ring within SKIN_AB of the
      source face's a*b* and SKIN_L of its L*), swap minus source: 0 = as natural as the source;
    - seam: the gradient energy (mean squared gradient magnitude) of L*, lightly smoothed, in
      the blend band, swap / source: 1 = no added edge;
    - mottling: the spread (standard deviation) of L* band-passed to patches of 0.1 to 0.5
      inter-ocular distances over the face's skin (Gaussians taken within the skin alone, so
      the outline's step stays out), swap / source; mottling_chroma: the same on a*b* (RMS of
      both). Patches of another skin tone raise them (chroma most: shading moves L*, not a*b*),
      a flat face lowers them."""
    from skimage.color import deltaE_ciede2000
    r = composite_regions(marks, source.shape)
    if min(r["inside"].sum(), r["band"].sum(), r["skin"].sum()) < 50:
        return None
    ys, xs = np.nonzero(r["outside"] | r["band"] | r["skin"])
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    r = {k: v[box] for k, v in r.items()}
    lab_s, lab_w = _lab(source[box]), _lab(swapped[box])
    ref = np.median(lab_s[r["inside"]], axis=0)
    skin_out = r["outside"] & (np.hypot(*(lab_s[..., 1:] - ref[1:]).transpose(2, 0, 1)) < SKIN_AB) & \
        (np.abs(lab_s[..., 0] - ref[0]) < SKIN_L)
    if skin_out.sum() < 50:
        return None
    iod = inter_ocular(marks[None])[0]

    def tone(lab):
        return float(deltaE_ciede2000(lab[r["inside"]].mean(0), lab[skin_out].mean(0)))

    def edges(lab):
        l = lab[..., 0]
        l = cv2.GaussianBlur(l, (0, 0), 0.02 * iod)        # skin pores and noise out, edges kept
        g = np.hypot(cv2.Sobel(l, cv2.CV_32F, 1, 0), cv2.Sobel(l, cv2.CV_32F, 0, 1))[r["band"]]
        return float(np.mean(g ** 2))

    w = r["skin"].astype(np.float32)

    def blur(x, sigma):       # within the skin alone (normalised): the outline's step stays out
        wx = x * (w[..., None] if x.ndim == 3 else w)
        n = cv2.GaussianBlur(w, (0, 0), sigma) + 1e-6
        return cv2.GaussianBlur(wx, (0, 0), sigma) / (n[..., None] if x.ndim == 3 else n)

    def patches(lab, channels):
        x = np.ascontiguousarray(lab[..., channels])
        fine = blur(x, 0.1 * iod) - blur(x, 0.5 * iod)
        return float(np.sqrt((fine[r["skin"]] ** 2).sum(-1).mean()) if fine.ndim == 3 else fine[r["skin"]].std())

    return {"skin_tone": tone(lab_w) - tone(lab_s),
            "seam": edges(lab_w) / max(edges(lab_s), 1e-6),
            "mottling": patches(lab_w, 0) / max(patches(lab_s, 0), 1e-6),
            "mottling_chroma": patches(lab_w, [1, 2]) / max(patches(lab_s, [1, 2]), 1e-6)}
