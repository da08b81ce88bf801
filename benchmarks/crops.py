"""Faces side by side from a recording the models never saw: the source, then each model's A->B
swap, cut from the whole swapped frame at the same place (the real `swap` pipeline, each frame as
a still). Written with facepair's labels (watermark, tag, C2PA), like every swap it makes.

It first prints what a face of each crop size can hold of the clip (every 10th frame, or
--every): the face squeezed to 64 / 128 px wide and scaled back, and as wide as it lies in a 64 /
128 px aligned crop (padding 0.15: 70 % of the side); for each, evaluate's face detail and how
well dlib's landmarks on it follow the source's (mouth r, eyelid r, landmark error): the best a
perfect face of that resolution can score.

    python benchmarks/crops.py MODEL_DIR... -o crops.jpg [--video CLIP] [--frames 4] [--px 192] [--every 10]

The picture in docs/results.md: models of `benchmarks/quality.py --split cross` (mouth, hd) on obama_clip2.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from facepair.evaluate.metrics import detail, expression_figures, face_region
from facepair.faces.detect import make_detector
from facepair.faces.landmarks import Landmarker
from facepair.media.video import iter_video, video_info
from facepair.model.store import read_state
from facepair.provenance.label import write_image
from facepair.swap.options import SwapOptions
from facepair.swap.pipeline import SwapSummary, Swapper

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))


def caption(img: np.ndarray, text: str) -> np.ndarray:
    head = np.full((24, img.shape[1], 3), 255, np.uint8)
    cv2.putText(head, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([head, img])


def squeezed(video: Path, det, lm, every: int = 10) -> dict:
    """{face width in px: (median face detail, expression figures)} of the clip's face squeezed
    to that width and scaled back, against the clip itself: what a perfect face of that
    resolution keeps, and how well dlib's landmarks on it follow the source's (evaluate's mouth
    and eyelid correlations, landmark error; the ceiling of those figures at that resolution)."""
    widths = (64, 128, 0.7 * 64, 0.7 * 128)
    res, marks, found = {w: [] for w in widths}, {w: [] for w in widths}, []
    for _, f in iter_video(video, every=every):
        boxes = det(f)
        if not boxes:
            continue
        m = lm(f, boxes[0])
        found.append(m)
        region, width = face_region(m, f.shape), np.ptp(m[:, 0])
        for w in widths:
            small = cv2.resize(f, None, fx=w / width, fy=w / width, interpolation=cv2.INTER_AREA)
            back = cv2.resize(small, f.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            res[w].append(detail(back, region) / detail(f, region))
            marks[w].append(lm(back, boxes[0]))
    return {w: (float(np.median(res[w])), expression_figures(np.array(found), np.array(marks[w])))
            for w in widths}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--video", type=Path, default=DATA / "faces/obama/obama_clip2.mp4")
    ap.add_argument("--frames", type=int, default=4, help="frames, evenly spread over the video")
    ap.add_argument("--px", type=int, default=192, help="side of each face in the picture")
    ap.add_argument("--every", type=int, default=10, help="the ceiling figures' frame step")
    args = ap.parse_args()
    det, lm = make_detector("hog"), Landmarker()
    held = squeezed(args.video, det, lm, args.every)
    print(f"a perfect face of this width (the clip's face squeezed to it and scaled back), one "
          f"frame in {args.every}: face detail; mouth r, eyelid r, landmark error of dlib on it")
    for w, (d, e) in held.items():
        print(f"  {w:5.1f} px  detail {d:.2f}   mouth r {e['mouth_corr']:.2f}   eyelid r "
              f"{e['eyelid_corr']:.2f}   landmark error {e['landmark_error']:.3f}")
    count = video_info(args.video)["frames"]                # keep only the picked frames
    wanted = set(np.linspace(0, count - 1, args.frames + 2).round().astype(int)[1:-1].tolist())
    picked = [f for i, f in iter_video(args.video) if i in wanted]
    boxes = []
    for f in picked:                          # the face's square, 25 % around its landmarks
        m = lm(f, det(f)[0])
        (x0, y0), (x1, y1) = m.min(0), m.max(0)
        half, (cx, cy) = 0.625 * max(x1 - x0, y1 - y0), ((x0 + x1) / 2, (y0 + y1) / 2)
        boxes.append([int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half)])

    def cut(img, box):
        x0, y0, x1, y1 = box
        pad = max(0, -x0, -y0, x1 - img.shape[1], y1 - img.shape[0])
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        face = img[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
        return cv2.resize(face, (args.px, args.px), interpolation=cv2.INTER_AREA)

    columns = [caption(np.concatenate([cut(f, b) for f, b in zip(picked, boxes)]), "source (never trained on)")]
    for model in args.models:
        state = read_state(model)
        swapper = Swapper(model, SwapOptions(direction="a2b", progress=False))
        outs = [f.copy() for f in picked]
        for i, out in enumerate(outs):
            swapper.process([out], i, False, SwapSummary())
        label = f"{state['preset']}, {state['model_config']['size']} px, {state['step']} steps"
        columns.append(caption(np.concatenate([cut(o, b) for o, b in zip(outs, boxes)]), label))
    write_image(args.out, np.concatenate(columns, 1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
