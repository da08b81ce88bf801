"""`facepair demo`: the whole pipeline on the sample footage, from one command.

Finds the footage ($FACEPAIR_SAMPLES, else ../shared/data beside the repository, else downloads it
from its public origins, pinned by commit and sha256, into the user's cache), extracts the Obama
(A) and Reagan (B) face sets, trains for the budget, swaps the first 10 s of the 720p address to
Reagan with its audio, evaluates, and writes DIR/swap.mp4, DIR/report.html, DIR/model/.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import FacepairError
from .evaluate import EVAL_FACES
from .training.options import TrainOptions

DEFAULT_MINUTES = 10.0        # `make demo` stays near 15 minutes on 2 CPU cores
SWAP_SECONDS = 10.0
CALIBRATE_FACES = None        # the cue's measurement as train's: by the training's length
_STYLETALK = ("https://raw.githubusercontent.com/FuxiVirtualHuman/styletalk/"
              "17b046cbf72823991650896b661908118956b2d2/samples/source_video/video/")
SAMPLES = {   # path under the samples folder: (origin, sha256)
    "faces/obama/obama_clip1.mp4": (_STYLETALK + "Obama_clip1.mp4",
                                    "6721984538f808aa7932e91ff2bd0836767e7f2b5fecb6b056b83ca48bffaa15"),
    "faces/obama/obama_clip2.mp4": (_STYLETALK + "Obama_clip2.mp4",
                                    "da31a20da0d5075388c2b71437dc23559b3eb03bd69bab2e0d4777641cf29f04"),
    "faces/reagan/reagan_clip1.mp4": (_STYLETALK + "reagan_clip1.mp4",
                                      "dc947b5ce8897321b627b787fd769c229be6b47cfef5e5b6165c603246bedaf8"),
    "video/obama_weekly_address_720p.mp4": (
        "https://raw.githubusercontent.com/deerajnagothu/face2face-demo/"
        "869811c0ef5cf9f9e62354613ec37b539f2d965a/obama.mp4",
        "f973eda360d9a51752b5a6873c4f95246828fb7a03f28af4eb59029e853e58a9"),
}


def _complete(folder: Path) -> bool:
    return all((folder / rel).is_file() for rel in SAMPLES)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facepair" / "samples"


def download_samples(dest: Path) -> Path:
    """Fetch the sample footage from its public origins into `dest`, checking each sha256."""
    for rel, (url, sha) in SAMPLES.items():
        target = dest / rel
        if target.is_file() and _sha256(target) == sha:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"downloading {url}")
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
                shutil.copyfileobj(r, f)
            if _sha256(Path(tmp)) != sha:
                raise FacepairError(f"downloaded {rel} does not match its pinned sha256; not used")
            os.replace(tmp, target)
        except (urllib.error.URLError, OSError) as e:
            raise FacepairError(f"cannot download the sample footage ({e}); offline? Set "
                                "FACEPAIR_SAMPLES to a folder holding it") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
    return dest


def find_samples() -> Path:
    env = os.environ.get("FACEPAIR_SAMPLES")
    if env:
        if not _complete(Path(env)):
            raise FacepairError(f"FACEPAIR_SAMPLES={env} lacks the sample footage "
                                f"({', '.join(SAMPLES)})")
        return Path(env)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):     # the repository root
        if _complete(base.parent / "shared" / "data"):
            return base.parent / "shared" / "data"
    if _complete(cache_dir()):
        return cache_dir()
    return download_samples(cache_dir())


def demo(out_dir="demo", minutes: float = DEFAULT_MINUTES, preset: str | None = None,
         progress: bool = True, calibrate_faces: int | None = CALIBRATE_FACES,
         eval_faces: int = EVAL_FACES, swap_seconds: float = SWAP_SECONDS) -> dict:
    from .api import evaluate, extract, swap, train
    from .evaluate import report
    from .faces.faceset import load_index
    from .model.presets import DEFAULT_PRESET, get_preset
    from .model.store import read_state
    from .swap.options import SwapOptions
    from .media.files import can_write

    if minutes <= 0:
        raise FacepairError("--minutes must be > 0")
    t0 = time.monotonic()
    out = Path(out_dir)
    can_write(out, folder=True)         # a file of that name: said in words ("File exists: ...")
    data = find_samples()
    out.mkdir(parents=True, exist_ok=True)
    sets = {"obama": ["faces/obama/obama_clip1.mp4", "faces/obama/obama_clip2.mp4"],
            "reagan": ["faces/reagan/reagan_clip1.mp4"]}
    # faces cut at the crop size of the preset trained (a demo run again resumes its model's;
    # asked for another preset, `train` says so before the faces are touched)
    resumed = (out / "model/state.json").exists() and read_state(out / "model").get("preset")
    size = get_preset(resumed or preset or DEFAULT_PRESET).model.size
    for name, clips in sets.items():
        folder = out / "faces" / name
        if not (folder / "faceset.json").exists() or load_index(folder)["size"] != size:
            print(f"[1/4] extracting faces of {name} ({size} px)")
            # into a folder of its own, named the face set's once all its clips are read: an
            # interrupted extract's index was taken for a whole face set by the next run
            part = folder.with_name(folder.name + ".partial")
            for old in (folder, part):
                shutil.rmtree(old, ignore_errors=True)
            print(extract([data / c for c in clips], part, every=2, size=size, progress=progress))
            part.rename(folder)
    print(f"[2/4] training for {minutes:g} minutes")
    result = train(TrainOptions(a=[out / "faces/obama"], b=[out / "faces/reagan"],
                                model_dir=str(out / "model"), preset=preset or None,
                                minutes=minutes, save_every=250, preview_every=250,
                                progress=progress, calibrate_faces=calibrate_faces))
    print(result)
    address = data / "video/obama_weekly_address_720p.mp4"
    print(f"[3/4] swapping the first {swap_seconds:g} s of the address to Reagan")
    print(swap(address, out / "model", out / "swap.mp4",
               SwapOptions(duration=swap_seconds, progress=progress)))
    print("[4/4] evaluating")
    res = evaluate(out / "model", video=address, video_seconds=min(4.0, swap_seconds), max_faces=eval_faces)
    print(report.format_table(res))
    report.write_json(res, out / "metrics.json")
    report.write_html(res, out / "report.html")
    print(f"\ndone in {(time.monotonic() - t0) / 60:.1f} min (preset {res['preset'] or DEFAULT_PRESET})\n"
          f"  swapped video: {out / 'swap.mp4'} (watermarked; check with `facepair verify`)\n"
          f"  report:        {out / 'report.html'}\n  figures:       {out / 'metrics.json'}\n"
          f"  model:         {out / 'model'} (run the demo again to train it further)")
    return report.figures(res)
