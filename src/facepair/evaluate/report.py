"""Evaluation output: a printed table, a JSON file of every figure, an HTML report with the
metrics, preview grids, loss curves (matplotlib) and sample before/after faces (the pictures
that hold swapped faces labelled as every output is)."""
from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import FacepairError
from ..media.files import atomic_write_bytes, atomic_write_json
from ..provenance import label as labels

ROWS = [  # (label, keys, format, which way it is better: for the HTML report's readers;
          # each figure's definition: docs/commands.md, evaluate)
    ("reconstruction L1  A / B", ("l1_a", "l1_b"), "{:.4f}",
     "lower"),
    ("reconstruction PSNR  A / B (dB)", ("psnr_a", "psnr_b"), "{:.2f}",
     "higher"),
    ("reconstruction SSIM  A / B", ("ssim_a", "ssim_b"), "{:.3f}",
     "higher"),
    ("crops: ID (nearer the target, within 0.5)  A->B / B->A", ("id_rate_a2b", "id_rate_b2a"), "{:.1%}",
     "higher"),
    ("crops: ID, forced choice only  A->B / B->A", ("id_forced_rate_a2b", "id_forced_rate_b2a"), "{:.1%}",
     "higher"),
    ("ID retrieval, real faces  A / B", ("id_rate_real_a", "id_rate_real_b"), "{:.1%}",
     "higher"),
    ("embedding distance A->B to B / to A", ("dist_a2b_to_b", "dist_a2b_to_a"), "{:.3f}",
     "to B lower, to A higher"),
    ("embedding distance B->A to A / to B", ("dist_b2a_to_a", "dist_b2a_to_b"), "{:.3f}",
     "to A lower, to B higher"),
    ("crops: inner-face landmark error / inter-ocular  A->B / B->A", ("landmark_error_a2b", "landmark_error_b2a"), "{:.3f}",
     "lower"),
    ("crops: mouth-opening correlation  A->B / B->A", ("mouth_corr_a2b", "mouth_corr_b2a"), "{:.2f}",
     "higher (1 at most)"),
    ("crops: mouth-opening spread, swap / source  A->B / B->A", ("mouth_std_ratio_a2b", "mouth_std_ratio_b2a"), "{:.2f}",
     "near 1"),
    ("crops: grid (lattice peaks of the spectrum), swap / source  A->B / B->A", ("grid_a2b", "grid_b2a"), "{:.2f}",
     "near 1 (above: a lattice)"),
    ("whole frames: faces swapped  A->B / B->A", ("frame_swapped_a2b", "frame_swapped_b2a"), "{:.0%}",
     "higher"),
    ("whole frames: ID (within 0.5) / forced choice  A->B", ("frame_id_rate_a2b", "frame_id_forced_rate_a2b"), "{:.1%}",
     "higher"),
    ("whole frames: ID (within 0.5) / forced choice  B->A", ("frame_id_rate_b2a", "frame_id_forced_rate_b2a"), "{:.1%}",
     "higher"),
    ("whole frames: embedding distance to the target  A->B / B->A", ("frame_id_dist_a2b", "frame_id_dist_b2a"), "{:.3f}",
     "lower"),
    ("whole frames: inner-face landmark error  A->B / B->A", ("frame_landmark_error_a2b", "frame_landmark_error_b2a"), "{:.3f}",
     "lower"),
    ("whole frames: mouth-opening correlation  A->B / B->A", ("frame_mouth_corr_a2b", "frame_mouth_corr_b2a"), "{:.2f}",
     "higher"),
    ("whole frames: mouth-opening spread  A->B / B->A", ("frame_mouth_std_ratio_a2b", "frame_mouth_std_ratio_b2a"), "{:.2f}",
     "near 1"),
    ("whole frames: eyelid-gap correlation  A->B / B->A", ("frame_eyelid_corr_a2b", "frame_eyelid_corr_b2a"), "{:.2f}",
     "higher"),
    ("video: frames / failures (no face found or swapped)", ("video_frames", "video_failures"), "{}",
     "failures: fewer"),
    ("video: ID within 0.5 of the target / forced choice", ("video_id_rate", "video_id_forced_rate"), "{:.1%}",
     "higher"),
    ("video: embedding distance to the target", ("video_id_dist",), "{:.3f}",
     "lower"),
    ("video: mouth-opening correlation / spread", ("video_mouth_corr", "video_mouth_std_ratio"), "{:.2f}",
     "higher / near 1"),
    ("video: eyelid-gap correlation / mean gap, swap / source", ("video_eyelid_corr", "video_eyelid_ratio"), "{:.2f}",
     "higher / near 1"),
    ("video: inner-face landmark error / inter-ocular", ("video_landmark_error",), "{:.3f}",
     "lower"),
    ("video: face detail, swap / source", ("video_detail",), "{:.2f}",
     "near 1 (below: soft)"),
    ("video: share of the face kept from the source (--occlusion auto)", ("video_kept",), "{:.1%}",
     "near 0 with nothing in front"),
    ("video: skin tone at the outline, ΔE00 swap - source", ("video_skin_tone",), "{:.2f}",
     "near 0"),
    ("video: seam (gradient energy in the blend band), swap / source", ("video_seam",), "{:.2f}",
     "near 1 (above: an edge)"),
    ("video: mottling of lightness / of colour, swap / source", ("video_mottling", "video_mottling_chroma"), "{:.2f}",
     "near 1"),
    ("video: rebuilt by its own side, SSIM / GMSD (face region)", ("video_rec_ssim", "video_rec_gmsd"), "{:.3f}",
     "higher / lower"),
    ("video: rebuilt by its own side, mouth / eyelid correlation", ("video_rec_mouth_corr", "video_rec_eyelid_corr"), "{:.2f}",
     "higher"),
    ("video flicker: swap / source / ratio", ("flicker_swap", "flicker_source", "flicker_ratio"), "{:.3f}",
     "ratio near 1"),
    ("video landmark jitter: swap / source / ratio", ("jitter_swap", "jitter_source", "jitter_ratio"), "{:.3f}",
     "ratio 1 or lower"),
]
EARLY_STEPS = 200     # below: say in the report that the faces are not yet a person's


def figures(res: dict) -> dict:
    return {k: v for k, v in res.items() if not k.startswith("_")}


def table(res: dict) -> list[tuple[str, str, str]]:
    """(label, value, which way it is better) for each row whose figures `res` holds."""
    return [(label, " / ".join(fmt.format(res[k]) for k in keys), better)
            for label, keys, fmt, better in ROWS if all(k in res for k in keys)]


def format_table(res: dict) -> str:
    head = (f"model {res['model']} (preset {res['preset']}, step {res['step']}); "
            f"{res['faces_a']} A and {res['faces_b']} B faces ({res['source']})")
    rows = table(res)
    width = max(len(l) for l, _, _ in rows)
    return "\n".join([head] + [f"  {l:<{width}}  {v}" for l, v, _ in rows])


def assets_folder(html_path) -> Path:
    """Where a report's pictures go: `<name>_files/` beside it."""
    return Path(html_path).with_name(Path(html_path).stem + "_files")


def check_outputs(json_path=None, html_path=None) -> None:
    """The outputs of `evaluate --json/--html`, checked before the minutes of work: named as what
    they hold (`--html out/keep.png` replaced a picture with a report, with exit 0), and, for
    the report, room for its pictures' folder beside it."""
    for path, exts, flag in ((json_path, (".json",), "--json"), (html_path, (".html", ".htm"), "--html")):
        if path is not None and Path(path).suffix.lower() not in exts:
            raise FacepairError(f"{flag} writes {exts[0][1:].upper()}: give a name ending in "
                                f"{' or '.join(exts)} (got {path})")
    if html_path is not None:
        assets = assets_folder(html_path)
        if assets.exists() and not assets.is_dir():
            raise FacepairError(f"the report's pictures go in {assets}, and a file of that name is "
                                "there: give the report another name")


def write_json(res: dict, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)       # as write_html makes its folder
    atomic_write_json(Path(path), figures(res), follow_links=True)


def _loss_plot(model_dir: Path, out: Path) -> bool:
    log = model_dir / "log.csv"
    if not log.exists():
        return False
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    step = [int(r["step"]) for r in rows]
    for key, label in (("loss_a", "train A"), ("loss_b", "train B")):
        ax.plot(step, [float(r[key]) for r in rows], label=label, lw=1)
    for key, label in (("val_loss_a", "validation A"), ("val_loss_b", "validation B")):
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        if pts:
            ax.plot(*zip(*pts), "o-", label=label, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("L1 loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out, buf.getvalue(), sync=False)      # a new file: nothing planted written into
    plt.close(fig)
    return True


def write_html(res: dict, path: Path) -> list[Path]:
    """The report at `path`, its images in `<name>_files/` beside it. Returns the image paths."""
    path = Path(path)
    assets = assets_folder(path)
    assets.mkdir(parents=True, exist_ok=True)
    model_dir = Path(res["model"])
    images, parts = [], []
    s = res["_samples"]
    n = min(len(v) for v in s.values())
    if n:
        grid = np.concatenate([np.concatenate(list(s[k][:n]), 0)
                               for k in ("a", "rec_a", "a2b", "b", "rec_b", "b2a")], 1)
        labels.write_image(assets / "samples.png", np.kron(grid, np.ones((2, 2, 1), np.uint8)))
        images.append(assets / "samples.png")
        parts.append("<h2>Sample faces</h2><p>Columns: A, A&rarr;A, A&rarr;B, B, B&rarr;B, "
                     "B&rarr;A (evaluated faces).</p><img alt='sample faces: A, its rebuild, A swapped to B, and the same for B' src='{}/samples.png'>".format(assets.name))
    if _loss_plot(model_dir, assets / "losses.png"):
        images.append(assets / "losses.png")
        parts.append(f"<h2>Loss curves</h2><img alt='loss curves' src='{assets.name}/losses.png'>")
    preview = model_dir / "previews" / "latest.png"
    if preview.exists():
        atomic_write_bytes(assets / "preview.png", preview.read_bytes(), sync=False)
        images.append(assets / "preview.png")
        parts.append(f"<h2>Latest training preview</h2><img alt='the training preview grid' src='{assets.name}/preview.png'>")
    frames = res.get("_frames")
    if frames:
        labels.write_image(assets / "frames.png", np.concatenate(frames, 1))
        images.append(assets / "frames.png")
        parts.append("<h2>Before / after</h2><img alt='frames before and after the swap' style='max-width:100%' "
                     f"src='{assets.name}/frames.png'>")
    border = res.get("_border")
    if border is not None:
        labels.write_image(assets / "border.png", border)
        images.append(assets / "border.png")
        scale = max(1, 720 // border.shape[1])           # shown enlarged, pixels kept square
        parts.append("<h2>The face's border</h2><p>Where the swap fades into the frame, at full "
                     "resolution (shown enlarged): the source above, the swap below; along the "
                     "jaw from one cheek to the other.</p><img alt='the border of the face, source above, swap below' "
                     "style='width:{}px' src='{}/border.png'>"
                     .format(border.shape[1] * scale, assets.name))
    rows = "".join(f"<tr><td>{html.escape(l)}</td><td>{html.escape(v)}</td><td>{html.escape(b)}</td></tr>"
                   for l, v, b in table(res))
    video = (f"<p>The video rows: <code>{html.escape(res['video'])}</code> ({html.escape(res.get('direction', ''))}), "
             "swapped and scored frame by frame.</p>") if "video" in res else ""
    early = (f"<p><b>This model has trained {res['step']} steps only</b>: its faces are still "
             "blurred, not yet a person's; the README's figures come from 20 minutes of training "
             "(548 to 2,940 steps of <code>hd</code>).</p>") if isinstance(res["step"], int) and res["step"] < EARLY_STEPS else ""
    # what evaluate warned of on the terminal (too few faces to correlate, ...) is in the report too
    early += "".join(f"<p><b>Warning</b>: {html.escape(str(w))}</p>" for w in res.get("warnings", []))
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>facepair evaluation</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}td{{padding:2px 12px}}
tr:nth-child(even){{background:#f2f2f2}}img{{image-rendering:pixelated}}</style></head><body>
<h1>facepair evaluation</h1>
<p>Model <code>{html.escape(str(model_dir))}</code>, preset <b>{html.escape(res['preset'])}</b>,
step {html.escape(str(res['step']))}; {res['faces_a']:d} faces of A and {res['faces_b']:d} of B ({html.escape(res['source'])}).
All media made by facepair is synthetic and watermarked. Report written by facepair {__version__}.</p>
{early}<h2>Metrics</h2>
<p>Each figure's definition: the evaluate section of facepair's docs/commands.md.</p>{video}
<table><tr><th>figure</th><th>value</th><th>better</th></tr>{rows}</table>
{''.join(parts)}
</body></html>"""
    atomic_write_bytes(path, doc.encode(), follow_links=True)
    return images
