"""The output encoder's settings: x264's CPU time a frame, file size and PSNR (luma, against the
frames given) for this version's settings (media/video.X264) beside the previous versions'
(`veryfast`), at the same CRF, on the first frames of the shared 720p address.

    python benchmarks/encoder.py [--frames 300] [--crf 18 16] [--rounds 2]

CPU time is the process's (x264's own threads included), the median of --rounds runs taken in
turn; size and PSNR do not change between runs.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

import av
import numpy as np

from facepair.media.video import X264

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
PREVIOUS = {"preset": "veryfast"}


def encode(frames: list, options: dict) -> tuple[float, bytes]:
    """(CPU seconds, the mp4's bytes) of x264 with `options` over yuv420p `frames`."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=30)
        s.height, s.width = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
        s.pix_fmt, s.options = "yuv420p", options
        t = time.process_time()
        for i, y in enumerate(frames):
            f = av.VideoFrame.from_ndarray(y, format="yuv420p")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
        cpu = time.process_time() - t
    return cpu, buf.getvalue()


def psnr(frames: list, data: bytes) -> float:
    h = frames[0].shape[0] * 2 // 3
    with av.open(io.BytesIO(data)) as c:
        got = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
    mse = np.mean([np.mean((a[:h].astype(np.float32) - b[:h]) ** 2) for a, b in zip(frames, got)])
    return float(10 * np.log10(255 ** 2 / mse))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DATA / "video/obama_weekly_address_720p.mp4")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--crf", type=int, nargs="+", default=[18, 16])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with av.open(str(args.video)) as c:
        frames = [f.to_ndarray(format="yuv420p") for _, f in zip(range(args.frames), c.decode(video=0))]
    print(f"x264 on {len(frames)} frames of {args.video.name}, medians of {args.rounds} rounds:")
    for crf in args.crf:
        before = "previous (veryfast)"
        rows = {before: PREVIOUS, f"this version ({X264['preset']}, {X264['x264-params']})": X264}
        cpu = {name: [] for name in rows}
        data = {}
        for _ in range(args.rounds):
            for name, opts in rows.items():
                t, data[name] = encode(frames, {"crf": str(crf), **opts})
                cpu[name].append(t)
        base, b0 = statistics.median(cpu[before]), len(data[before])
        for name in rows:
            t = statistics.median(cpu[name])
            print(f"  CRF {crf} {name}: {1000 * t / len(frames):5.1f} ms CPU a frame ({t / base:.2f}x), "
                  f"{len(data[name]) / 1e6:.2f} MB ({len(data[name]) / b0:.2f}x), "
                  f"PSNR-Y {psnr(frames, data[name]):.2f} dB", flush=True)


if __name__ == "__main__":
    main()
