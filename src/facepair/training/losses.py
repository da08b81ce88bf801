"""Reconstruction losses: the published mean absolute error, and the options presets add:
SSIM, extra weight on the eyes and mouth (which land on fixed pixels of aligned crops), the
gradient difference loss against blur, and a perceptual loss on the features of dlib's face
network."""
from __future__ import annotations

import contextlib

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..faces import align
from ..faces.descriptor import MODEL_FILE, WIDTHS, descriptor_net, levels
from ..faces.detect import model_file


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-(torch.arange(size) - size // 2).float() ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


_WINDOW = _gauss()


def ssim(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM of images in [0, 1] (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), or
    its map's mean weighted by `weights` (N or 1, 1, H, W; cut to the map's valid part).
    Written out because it must be differentiable in torch; the evaluation computes the same
    figure with scikit-image (evaluate/metrics.ssim)."""
    w = _WINDOW.to(x)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(t):
        return F.conv2d(t, w, groups=3)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    if weights is None:
        return s.mean()
    r = (w.shape[-1] - 1) // 2                  # the map lacks the window's half at each edge
    wm = weights[..., r:weights.shape[-2] - r, r:weights.shape[-1] - r].expand_as(s)
    return (s * wm).sum() / wm.sum()


def region_weights(size: int, padding: float, weight: float) -> torch.Tensor:
    """(1, 1, S, S): 1 everywhere, `weight` on the eyes and the mouth of the aligned template."""
    tpl = align.template(size, padding)
    mask = np.zeros((size, size), np.float32)
    for first, last in ((36, 41), (42, 47), (48, 67)):          # eyes, mouth (68-point indices)
        pts = tpl[first - align.TEMPLATE_FROM:last - align.TEMPLATE_FROM + 1]
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1.0)
    k = max(1, size // 32)
    mask = cv2.dilate(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8), iterations=2)
    return torch.from_numpy(1 + (weight - 1) * mask)[None, None]


def face_weights(marks: np.ndarray, size: int, outside: float) -> torch.Tensor:
    """Masked training's weights (N, 1, S, S): 1 on each face's landmark hull grown by S/16 px
    and softened over S/64, `outside` beyond it (marks: (N, 68, 2) crop pixels of the targets)."""
    grow = max(1, round(size / 16))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
    out = np.empty((len(marks), 1, size, size), np.float32)
    for i, m in enumerate(np.asarray(marks)):
        hull = np.zeros((size, size), np.float32)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(m).astype(np.int32)), 1.0)
        out[i, 0] = cv2.GaussianBlur(cv2.dilate(hull, kernel), (0, 0), size / 64)
    return torch.from_numpy(outside + (1 - outside) * out)


def gradient_difference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean | |dx x| - |dx y| | + | |dy x| - |dy y| | over neighbouring pixels: the gradient
    difference loss of Mathieu et al. 2016 (alpha 1), made against the blur of pixel losses: a
    soft edge is penalised for its missing contrast wherever it lies. One line of torch: no
    installed library has it, and it is not worth a dependency."""
    return sum((x.diff(dim=d).abs() - y.diff(dim=d).abs()).abs().mean() for d in (-1, -2))


class FaceFeatures(torch.nn.Module):
    """The first levels of dlib's face descriptor network (faces/descriptor.py: the weights of the
    face-recognition-models wheel, frozen): images in [0, 1] (N, 3, S, S) RGB -> the feature maps
    after its stem and after each of its first `upto` levels of residual blocks. A perceptual
    loss compares a reconstruction's maps with its target's (Johnson et al. 2016 used VGG, whose
    weights would be a download here; this network ships in a wheel and has seen only faces)."""

    def __init__(self, upto: int = 2):
        super().__init__()
        net = descriptor_net(model_file(MODEL_FILE))     # read once per process, shared
        convs, mean = net.convs, net.mean
        n = 1 + 2 * sum(blocks for _, blocks in WIDTHS[:upto])
        self.weights = torch.nn.ParameterList(torch.nn.Parameter(w, requires_grad=False) for w, *_ in convs[:n])
        self.biases = torch.nn.ParameterList(torch.nn.Parameter(b, requires_grad=False) for _, b, *_ in convs[:n])
        self.shapes = [(s, p) for *_, s, p in convs[:n]]       # (stride, padding) of each
        self.upto = upto
        self.register_buffer("mean", mean / 255)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) * (255 / 256)               # dlib: (pixel - the channel's mean) / 256
        return levels(x, ((w, b, *sp) for w, b, sp in zip(self.weights, self.biases, self.shapes)), self.upto)


def perceptual(features: FaceFeatures, rec: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the feature levels of |features(rec) - features(target)|, each level divided by
    its target maps' mean magnitude (so each level counts alike)."""
    with torch.no_grad():
        want = features(target)
    got = features(rec)
    return sum((g.float() - w.float()).abs().mean() / (w.float().abs().mean() + 1e-6)
               for g, w in zip(got, want)) / len(got)


def make_loss(kind: str, ssim_weight: float = 0.0, weights: torch.Tensor | None = None,
              edge_weight: float = 0.0, outside_weight: float = 1.0, perceptual_weight: float = 0.0,
              amp=None):
    """loss(reconstruction, target, marks=None) -> scalar, from a preset's settings; `marks`
    (the targets' landmarks) with masked training (outside_weight < 1): the pixel losses (L1 and
    SSIM) weighted by face_weights. The perceptual term's network runs under `amp` (bf16 where
    the model does)."""
    if kind != "l1":
        raise ValueError(f"unknown loss {kind}")
    features = FaceFeatures().eval() if perceptual_weight else None

    def loss(rec, target, marks=None):
        w, face = (None if weights is None else weights.to(rec)), None
        if outside_weight != 1 and marks is not None:
            face = face_weights(marks.cpu().numpy(), rec.shape[-1], outside_weight).to(rec)
            w = face if w is None else w * face
        if w is None:
            l = F.l1_loss(rec, target)
        else:
            l = ((rec - target).abs() * w).mean() / w.mean()
        if ssim_weight:
            l = l + ssim_weight * (1 - ssim(rec, target, face))
        if edge_weight:
            l = l + edge_weight * gradient_difference(rec, target)
        if features is not None:
            features.to(rec)
            with amp or contextlib.nullcontext():
                l = l + perceptual_weight * perceptual(features, rec, target)
        return l
    return loss
