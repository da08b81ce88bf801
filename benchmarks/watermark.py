"""Watermark: visibility, robustness, false positives and speed, on all the shared media.

    python benchmarks/watermark.py [--seconds 4]

- Visibility: frames of the 720p address (every 50th) and the photos, marked by
  `watermark.embed`, against the originals: PSNR, and the mean absolute change on flat areas
  (9x9 local standard deviation of grey < 1.5).
- Robustness: each shared clip's first --seconds marked the way `swap` marks video
  (`embed_i420`, H.264 CRF 18), then each transformation in transforms.VIDEO, and its middle
  frame as JPEG q75 at 50 %; each photo marked by `embed`, then each of transforms.IMAGE. Every
  result goes through `verify`'s reader. Printed: detected / tried and the lowest z per row.
- False positives: the same transformations of the unmarked originals, plus single frames of the
  clips (every 25th) with the picture transformations: found / tried and the highest z.
- Speed: per 720p frame, `embed`, `embed_i420`, PyAV's own RGB -> YUV conversion (which
  `embed_i420` replaces in `swap`), and reading (`residual` per frame, `read` once per file).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np

from facepair.media.image import read_image
from facepair.media.video import iter_video
from facepair.provenance import watermark
from facepair.provenance.verify import verify_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transforms as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
CLIPS = [DATA / "video/obama_weekly_address_720p.mp4", DATA / "faces/obama/obama_clip1.mp4",
         DATA / "faces/obama/obama_clip2.mp4", DATA / "faces/reagan/reagan_clip1.mp4"]
PHOTOS = sorted((DATA / "photos").rglob("*.jpg"))


def mark_video(frames, dst: Path) -> Path:
    """As `swap` writes video: the mark added to Y of the YUV 4:2:0 frame, H.264 CRF 18."""
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt, s.options = "yuv420p", {"crf": "18", "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(watermark.embed_i420(f), format="yuv420p")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return dst


def flat_change(orig: np.ndarray, marked: np.ndarray) -> tuple[float, float]:
    d = marked.astype(np.float64) - orig
    g = cv2.cvtColor(orig, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mu = cv2.blur(g, (9, 9))
    flat = np.sqrt(np.maximum(cv2.blur(g * g, (9, 9)) - mu * mu, 0)) < 1.5
    psnr = 10 * math.log10(255 ** 2 / max(np.mean(d ** 2), 1e-12))
    return psnr, float(np.abs(d[flat]).mean()) if flat.any() else 0.0


def timed(fn, n=20):
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    nframes = int(args.seconds * 30)

    print("== visibility (embed vs original)")
    rows = [(f"address frame {i}", f) for i, f in iter_video(CLIPS[0], 50)]
    rows += [(p.name, read_image(p)) for p in PHOTOS]
    vis = [(name, *flat_change(f, watermark.embed(f))) for name, f in rows]
    for name, psnr, flat in vis:
        print(f"  {name:22s} PSNR {psnr:5.1f} dB   flat areas: mean |change| {flat:.3f}")
    print(f"  worst: PSNR {min(v[1] for v in vis):.1f} dB (target >= 45), flat change "
          f"{max(v[2] for v in vis):.3f} (target <= 0.5)")

    marked, unmarked = defaultdict(dict), defaultdict(dict)     # row -> {file: z}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for clip in CLIPS:
            frames = [f for _, f in iter_video(clip)][:nframes]
            for kind, src in (("marked", mark_video(frames, tmp / "m.mp4")), ("original", clip)):
                got = marked if kind == "marked" else unmarked
                got["as written" if kind == "marked" else "original"][clip.name] = verify_file(src).mark.z
                vid = [f for _, f in iter_video(src)][:nframes]
                for name, (change, crf) in T.VIDEO.items():
                    if name == "360p" and vid[0].shape[0] <= 360:
                        continue
                    out = T.transcode(vid, tmp / "t.mp4", change, crf)
                    got[f"video: {name}"][clip.name] = verify_file(out).mark.z
                mid = vid[len(vid) // 2]
                out = T.write_image(T.rescale(mid, 0.5), tmp / "mid", 75)
                got["video: middle frame, JPEG q75 at 50 %"][clip.name] = verify_file(out).mark.z
            print(f"  {clip.name}: done", flush=True)
        singles = [f for clip in CLIPS for _, f in iter_video(clip, 25)]
        pictures = [("photo", p.name, read_image(p)) for p in PHOTOS] + \
            [("frame", str(i), f) for i, f in enumerate(singles)]
        for kind, key, pic in pictures:
            for label, rgb in (("marked", watermark.embed(pic)), ("original", pic)):
                if label == "marked" and kind == "frame":
                    continue                              # frames are marked as video, above
                got = marked if label == "marked" else unmarked
                for name, (change, q) in T.IMAGE.items():
                    out = T.write_image(change(rgb), tmp / "p", q)
                    got[f"{kind}: {name}"][key] = verify_file(out).mark.z
    print(f"\n== robustness: marked media, found at z >= {watermark.Z_MIN:g} (z per file)")
    for name, zs in marked.items():
        hits = sum(z >= watermark.Z_MIN for z in zs.values())
        each = "  ".join(f"{k.split('.')[0]} {z:.1f}" for k, z in zs.items())
        print(f"  {name:42s} found {hits}/{len(zs)}: {each}")
    print("\n== false positives: unmarked originals (shared/data) and their transformations")
    for name, zs in unmarked.items():
        hits = sum(z >= watermark.Z_MIN for z in zs.values())
        print(f"  {name:42s} found {hits}/{len(zs)}   highest z {max(zs.values()):5.1f}")
    allz = [z for zs in unmarked.values() for z in zs.values()]
    print(f"  all: {sum(z >= watermark.Z_MIN for z in allz)} of {len(allz)} found; highest z "
          f"{max(allz):.1f}, mean {np.mean(allz):.1f}, sd {np.std(allz):.2f}")

    print("\n== speed per 720p frame (ms)")
    f = next(iter_video(CLIPS[0]))[1]
    e, ei = timed(lambda: watermark.embed(f)), timed(lambda: watermark.embed_i420(f))
    conv = timed(lambda: av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p"))
    plain = timed(lambda: av.VideoFrame.from_ndarray(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420),
                                                     format="yuv420p"))
    r = watermark.residual(watermark.embed(f))
    res, rd = timed(lambda: watermark.residual(f)), timed(lambda: watermark.read(r), 5)
    print(f"  embed (RGB, photos) {e:.1f}; embed_i420 (video) {ei:.1f}, of which the YUV "
          f"conversion {plain:.1f}; PyAV's RGB -> YUV conversion it replaces {conv:.1f}\n"
          f"  swap's encoder input per frame: {ei:.1f} ms now vs {conv:.1f} ms unmarked through "
          f"PyAV: {conv / ei:.2f}x\n"
          f"  reading: residual {res:.1f} per frame, read {rd:.0f} per file")


if __name__ == "__main__":
    main()
