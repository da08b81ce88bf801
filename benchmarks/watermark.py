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
- Speed (not with --no-speed): per 720p frame, `embed`, `embed_i420`, PyAV's own RGB -> YUV
  conversion (which `embed_i420` replaces in `swap`), and reading (`residual` per frame, `read`
  and `read_key` once per file).

Chains (issue 33; alone with --chains-only): every shared clip (both pairs' and the 720p
address) and photo, marked as `swap` marks them, through transforms.CHAINS (360p at CRF 32 and
36, 240p, flips, a 20 % crop, a 1.25x speed-up, two and three re-uploads) and PICTURE_CHAINS
(screenshots at a third of the size, flips, re-saves), and the unmarked originals through the
same: found / tried per chain with each file's z, and the false positives.

The installation mark (issue 33): every marked file is made twice, with the public mark alone
(before) and with both marks under a fixed test key (after, as `swap` marks now), and read the
way `verify` reads it: the public z before and after side by side, the installation mark's z,
and the highest z of --keys other keys on the same file (a different installation's key must not
be reported as this one's). The originals are read for both marks; the union bounds of the
false-positive chances are printed with them.
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
from facepair.provenance.verify import read_file, read_key, read_mark

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transforms as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
CLIPS = [DATA / "video/obama_weekly_address_720p.mp4", DATA / "faces/obama/obama_clip1.mp4",
         DATA / "faces/obama/obama_clip2.mp4", DATA / "faces/reagan/reagan_clip1.mp4"]
PHOTOS = sorted((DATA / "photos").rglob("*.jpg"))


def mark_video(frames, dst: Path, key: bytes | None = None) -> Path:
    """As `swap` writes video: the mark (with `key`: both marks) added to Y of the YUV 4:2:0
    frame, H.264 CRF 18."""
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt, s.options = "yuv420p", {"crf": "18", "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(watermark.embed_i420(f, key), format="yuv420p")):
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


def key_bounds() -> dict:
    """The false-positive bounds per file (docs/provenance.md): under no mark, each z the reader
    tries is close to standard normal, and the union bound adds them up."""
    q = lambda z: 0.5 * math.erfc(z / math.sqrt(2))                      # noqa: E731
    public_tests = 2 * 3 * 9 * watermark.GRID ** 2
    places = watermark.KEY_SPAN ** 2
    dims = 2 * len(watermark.KEY_M)          # two keys' patterns: correlation ~ N(0, 1 / dims)
    # another key's mark of strength s: our z ~ N(0, 1 + s^2 / dims), needs >= Z_KEY and KEY_RATIO s
    worst = max(q(max(watermark.Z_KEY, watermark.KEY_RATIO * s) / math.sqrt(1 + s * s / dims))
                for s in np.arange(0, 400, 0.05))
    return {"public": public_tests * q(watermark.Z_MIN), "public_tests": public_tests,
            "key": places * q(watermark.Z_KEY), "places": places, "dims": dims,
            "other_key": places * worst}


def chains(nframes: int, key: bytes, tmp: Path) -> None:
    """Issue 33's chains (transforms.CHAINS, PICTURE_CHAINS) on every shared clip, marked as
    `swap` marks video, and on every photo, marked as `swap` marks pictures; the same chains on
    the unmarked originals for the false positives. Printed per chain: found / tried and the z
    on each file, as `verify` reads it."""
    clips = sorted(DATA.glob("video/*.mp4")) + sorted(DATA.glob("faces/*/*.mp4"))
    found, unmarked = defaultdict(dict), defaultdict(dict)      # chain -> {file: (z, installation)}

    def note(table, chain, name, path):
        r = read_file(path)[0]
        mark, mirrored = read_mark(r)
        table[chain][name] = (mark.z, read_key(r, mark, mirrored, key).found)

    def read(path):
        return [f for _, f in iter_video(path)]
    for clip in clips:
        frames = read(clip)[:nframes]
        marked = read(mark_video(frames, tmp / "m.mp4", key))
        for table, src in ((found, marked), (unmarked, frames)):
            for chain, steps in T.CHAINS.items():
                note(table, f"video: {chain}", clip.stem, T.run_chain(src, steps, tmp, read))
            for chain, steps in T.PICTURE_CHAINS.items():
                note(table, f"middle frame: {chain}", clip.stem,
                     T.run_picture_chain(src[len(src) // 2], steps, tmp))
        print(f"  {clip.name}: done", flush=True)
    for photo in PHOTOS:
        pic = read_image(photo)
        for table, src in ((found, watermark.embed(pic, key)), (unmarked, pic)):
            for chain, steps in T.PICTURE_CHAINS.items():
                note(table, f"photo: {chain}", photo.stem, T.run_picture_chain(src, steps, tmp))
    print(f"\n== chains ({nframes} frames of each clip): public mark found (z >= {watermark.Z_MIN:g}) / "
          f"tried, installation mark found, z per file; unmarked originals: found, highest z")
    for chain, got in found.items():
        hits = sum(z >= watermark.Z_MIN for z, _ in got.values())
        keys = sum(k for _, k in got.values())
        fp = unmarked[chain]
        each = "  ".join(f"{name} {z:.1f}" for name, (z, _) in got.items())
        print(f"  {chain:58s} {hits}/{len(got)} (installation {keys}); originals {sum(z >= watermark.Z_MIN for z, _ in fp.values())}"
              f"/{len(fp)}, highest z {max(z for z, _ in fp.values()):.1f}\n      {each}")
    allfp = [v for t in unmarked.values() for v in t.values()]
    allm = [v for t in found.values() for v in t.values()]
    print(f"  in all: found on {sum(z >= watermark.Z_MIN for z, _ in allm)} of {len(allm)} marked files; "
          f"false positives {sum(z >= watermark.Z_MIN for z, _ in allfp)} of {len(allfp)} unmarked "
          f"(installation mark {sum(k for _, k in allfp)}); highest z there {max(z for z, _ in allfp):.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--chains-only", action="store_true", help="only the chains of re-uploads (issue 33)")
    ap.add_argument("--keys", type=int, default=50, help="other keys tried on each marked file")
    ap.add_argument("--no-speed", action="store_true", help="skip the timings")
    args = ap.parse_args()
    nframes = int(args.seconds * 30)
    rng = np.random.default_rng(1)
    key = bytes(rng.integers(0, 256, 32, dtype=np.uint8))               # "this installation"
    others = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for _ in range(args.keys)]

    if args.chains_only:
        with tempfile.TemporaryDirectory() as tmp:
            chains(nframes, key, Path(tmp))
        return

    def readings(path: Path) -> tuple[float, float, float]:
        """z of the public mark, of `key`'s installation mark, and the highest of the others'."""
        r = read_file(path)[0]
        mark, mirrored = read_mark(r)
        own = read_key(r, mark, mirrored, key)
        other = max(read_key(r, mark, mirrored, k).z for k in others)
        return mark.z, own, other

    print("== visibility (embed vs original): public mark alone (before) | both marks (after)")
    rows = [(f"address frame {i}", f) for i, f in iter_video(CLIPS[0], 50)]
    rows += [(p.name, read_image(p)) for p in PHOTOS]
    vis = [(name, *flat_change(f, watermark.embed(f)), *flat_change(f, watermark.embed(f, key)))
           for name, f in rows]
    for name, psnr, flat, psnr2, flat2 in vis:
        print(f"  {name:22s} PSNR {psnr:5.1f} | {psnr2:5.1f} dB   flat areas: mean |change| "
              f"{flat:.3f} | {flat2:.3f}")
    print(f"  worst: PSNR {min(v[1] for v in vis):.1f} | {min(v[3] for v in vis):.1f} dB (target "
          f">= 45), flat change {max(v[2] for v in vis):.3f} | {max(v[4] for v in vis):.3f} (target <= 0.5)")

    # row -> {file: z}: the public mark before (alone) and after (with the installation mark),
    # the installation mark (with `key`; KeyReading) and the best of the other keys on the same files
    before, after, own, other = (defaultdict(dict) for _ in range(4))
    unmarked, unmarked_key = defaultdict(dict), defaultdict(dict)

    def note(row, name, kind, path):
        z, k, o = readings(path)
        if kind == "before":
            before[row][name] = z
        elif kind == "after":
            after[row][name], own[row][name], other[row][name] = z, k, o
        else:
            unmarked[row][name], unmarked_key[row][name] = z, k

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for clip in CLIPS:
            frames = [f for _, f in iter_video(clip)][:nframes]
            for kind, src in (("before", mark_video(frames, tmp / "b.mp4")),
                              ("after", mark_video(frames, tmp / "a.mp4", key)), ("original", clip)):
                note("as written" if kind != "original" else "original", clip.name, kind, src)
                vid = [f for _, f in iter_video(src)][:nframes]
                for name, (change, crf) in T.VIDEO.items():
                    if name == "360p" and vid[0].shape[0] <= 360:
                        continue
                    note(f"video: {name}", clip.name, kind, T.transcode(vid, tmp / "t.mp4", change, crf))
                mid = vid[len(vid) // 2]
                out = T.write_image(T.rescale(mid, 0.5), tmp / "mid", 75)
                note("video: middle frame, JPEG q75 at 50 %", clip.name, kind, out)
            print(f"  {clip.name}: done", flush=True)
        singles = [f for clip in CLIPS for _, f in iter_video(clip, 25)]
        pictures = [("photo", p.name, read_image(p)) for p in PHOTOS] + \
            [("frame", str(i), f) for i, f in enumerate(singles)]
        for kind, name, pic in pictures:
            for how, rgb in (("before", watermark.embed(pic)), ("after", watermark.embed(pic, key)),
                             ("original", pic)):
                if how != "original" and kind == "frame":
                    continue                              # frames are marked as video, above
                for change_name, (change, q) in T.IMAGE.items():
                    note(f"{kind}: {change_name}", name, how, T.write_image(change(rgb), tmp / "p", q))
    print(f"\n== robustness: marked media; public mark found at z >= {watermark.Z_MIN:g}, installation "
          f"mark at z >= {watermark.Z_KEY:g} and >= {watermark.KEY_RATIO:g}x the z the public one "
          f"predicts\n   per file: public z before (alone) -> after (with the installation mark) / "
          f"installation z; the best of {len(others)} other keys in brackets")
    for row in before:
        n = len(before[row])
        hits_b = sum(z >= watermark.Z_MIN for z in before[row].values())
        hits_a = sum(z >= watermark.Z_MIN for z in after[row].values())
        hits_k = sum(k.found for k in own[row].values())
        each = "  ".join(f"{f.split('.')[0]} {before[row][f]:.1f}->{after[row][f]:.1f}/{own[row][f].z:.1f}"
                         f" [{other[row][f]:.1f}]" for f in before[row])
        print(f"  {row:38s} public {hits_b}->{hits_a}/{n}, installation {hits_k}/{n}: {each}")
    ratio = [after[r][f] / before[r][f] for r in before for f in before[r] if before[r][f] >= watermark.Z_MIN]
    print(f"  public z after / before, where found before: median {np.median(ratio):.3f}, lowest "
          f"{min(ratio):.3f}")
    share = [own[r][f].z / own[r][f].expected for r in own for f in own[r] if after[r][f] >= watermark.Z_MIN]
    print(f"  installation z / the z the public one predicts, where the public one is found: "
          f"median {np.median(share):.2f}, lowest {min(share):.2f}")
    allo = [z for zs in other.values() for z in zs.values()]
    wrong = sum(o >= watermark.Z_KEY and o >= watermark.KEY_RATIO * own[r][f].expected
                for r in other for f, o in other[r].items())
    print(f"  {len(others)} other keys on the {len(allo)} marked files ({len(allo) * len(others)} "
          f"readings): found on {wrong} files; highest z {max(allo):.1f}")

    print("\n== false positives: unmarked originals (shared/data) and their transformations")
    for name, zs in unmarked.items():
        hits = sum(z >= watermark.Z_MIN for z in zs.values())
        khits = sum(k.found for k in unmarked_key[name].values())
        print(f"  {name:42s} found {hits}/{len(zs)}   highest z {max(zs.values()):5.1f};  "
              f"installation mark {khits}/{len(zs)}, highest z "
              f"{max(k.z for k in unmarked_key[name].values()):4.1f}")
    allz = [z for zs in unmarked.values() for z in zs.values()]
    allk = [k for ks in unmarked_key.values() for k in ks.values()]
    print(f"  all: {sum(z >= watermark.Z_MIN for z in allz)} of {len(allz)} found; highest z "
          f"{max(allz):.1f}, mean {np.mean(allz):.1f}, sd {np.std(allz):.2f}")
    kz = [k.z for k in allk]
    print(f"  installation mark: {sum(k.found for k in allk)} of {len(allk)} found; highest z "
          f"{max(kz):.1f}, mean {np.mean(kz):.1f}, sd {np.std(kz):.2f}")
    b = key_bounds()
    print(f"  bounds per file (union bound): public {b['public_tests']:,} tests at z >= {watermark.Z_MIN:g}: "
          f"{b['public']:.2g}; installation mark, no mark of the key: {b['places']} places at z >= "
          f"{watermark.Z_KEY:g}: {b['key']:.2g}; a mark of another key ({b['dims']} dimensions): "
          f"{b['other_key']:.2g}")

    with tempfile.TemporaryDirectory() as tmp:
        chains(nframes, key, Path(tmp))
    if args.no_speed:
        return
    print("\n== speed per 720p frame (ms)")
    f = next(iter_video(CLIPS[0]))[1]
    e, ei = timed(lambda: watermark.embed(f, key)), timed(lambda: watermark.embed_i420(f, key))
    conv = timed(lambda: av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p"))
    plain = timed(lambda: av.VideoFrame.from_ndarray(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420),
                                                     format="yuv420p"))
    r = watermark.residual(watermark.embed(f, key))
    m = watermark.read(r)
    res, rd = timed(lambda: watermark.residual(f)), timed(lambda: watermark.read(r), 5)
    rk = timed(lambda: watermark.read_key(r, m, key), 5)
    print(f"  embed (RGB, photos) {e:.1f}; embed_i420 (video) {ei:.1f}, of which the YUV "
          f"conversion {plain:.1f}; PyAV's RGB -> YUV conversion it replaces {conv:.1f}\n"
          f"  swap's encoder input per frame: {ei:.1f} ms now vs {conv:.1f} ms unmarked through "
          f"PyAV: {conv / ei:.2f}x\n"
          f"  reading: residual {res:.1f} per frame, read {rd:.0f} per file, read_key {rk:.0f} per file")


if __name__ == "__main__":
    main()
