"""`facepair evaluate`'s figures as pure maths on arrays (no model, no media: frames.py makes
the arrays, score.py puts them together). The figures themselves are described in score.py.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from ..faces.landmarks import inter_ocular, mouth_opening


def reconstruction(real: np.ndarray, rec: np.ndarray) -> dict:
    a, b = real.astype(np.float64) / 255, rec.astype(np.float64) / 255
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    return {"l1": float(np.abs(a - b).mean()),
            "psnr": float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-10)))),
            "ssim": float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=1.0)
                                   for x, y in zip(a, b)]))}


def _corr(x, y) -> float:
    if np.std(x) < 1e-9 or np.std(y) < 1e-9:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def expression_figures(ls: np.ndarray, lw: np.ndarray) -> dict:
    """Landmark error, mouth-opening correlation and spread of swaps (landmarks lw) against
    their sources (ls), both (N, 68, 2)."""
    err = np.linalg.norm(ls - lw, axis=2).mean(1) / inter_ocular(ls)
    ms, mw = mouth_opening(ls), mouth_opening(lw)
    return {"landmark_error": float(err.mean()), "mouth_corr": _corr(ms, mw),
            "mouth_std_ratio": float(np.std(mw) / max(np.std(ms), 1e-9))}


def identity(e: dict) -> dict:
    """ID retrieval and distances from dlib embeddings {"a", "b", "a2b", "b2a": (N, 128)}: a swap
    counts as the target when its embedding is nearer the target's mean than the source's."""
    mean_a, mean_b = e["a"].mean(0), e["b"].mean(0)

    def d(x, m):
        return np.linalg.norm(x - m, axis=1)

    return {
        "id_rate_a2b": float(np.mean(d(e["a2b"], mean_b) < d(e["a2b"], mean_a))),
        "id_rate_b2a": float(np.mean(d(e["b2a"], mean_a) < d(e["b2a"], mean_b))),
        "id_rate_real_a": float(np.mean(d(e["a"], mean_a) < d(e["a"], mean_b))),
        "id_rate_real_b": float(np.mean(d(e["b"], mean_b) < d(e["b"], mean_a))),
        "dist_a2b_to_b": float(d(e["a2b"], mean_b).mean()), "dist_a2b_to_a": float(d(e["a2b"], mean_a).mean()),
        "dist_b2a_to_a": float(d(e["b2a"], mean_a).mean()), "dist_b2a_to_b": float(d(e["b2a"], mean_b).mean()),
        "dist_real_a_to_a": float(d(e["a"], mean_a).mean()), "dist_real_b_to_b": float(d(e["b"], mean_b).mean()),
    }
