"""Fixtures on the team's real sample media (../shared/data, or $FACEPAIR_SAMPLES)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Under pytest-xdist (`make test` runs 2 workers) each worker's torch, and the commands it
# starts, get an equal share of the cores: threads beyond the cores make OpenMP spin, not work.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data"))
OBAMA_CLIP1 = DATA / "faces/obama/obama_clip1.mp4"
OBAMA_CLIP2 = DATA / "faces/obama/obama_clip2.mp4"
REAGAN_CLIP = DATA / "faces/reagan/reagan_clip1.mp4"
ADDRESS = DATA / "video/obama_weekly_address_720p.mp4"
OBAMA_PHOTOS = DATA / "photos/obama"
BIDEN_PHOTO = DATA / "photos/biden/biden.jpg"
EVERY = 2                    # the `extracted` fixture reads every other frame of the clips


def group_photo(dst: Path, blur_small: bool = False) -> int:
    """Write a group picture to dst: Biden large on the left (face ~127 px), Obama small on the
    right (~72 px, out of focus with blur_small). Returns the column where Obama's part starts."""
    import cv2
    import numpy as np
    from facepair.media.image import read_image
    big, small = read_image(BIDEN_PHOTO), read_image(OBAMA_PHOTOS / "obama2.jpg")
    big = cv2.resize(big, (round(big.shape[1] * 900 / big.shape[0]), 900))
    small = cv2.resize(small, (round(small.shape[1] * 280 / small.shape[0]), 280))
    if blur_small:
        small = cv2.GaussianBlur(small, (0, 0), 5)
    canvas = np.full((900, big.shape[1] + small.shape[1], 3), 128, np.uint8)
    canvas[:, :big.shape[1]] = big
    canvas[300:580, big.shape[1]:] = small
    cv2.imwrite(str(dst), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return big.shape[1]


def run_cli(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    """`python -m facepair ARGS`, as a user runs it; `train` of a landmark-cue preset measures its
    cue setting on 8 frames per side unless the test says otherwise (the default 256 takes
    minutes, the tests train a few steps)."""
    if args and args[0] == "train" and "--calibrate-faces" not in args:
        args = (*args, "--calibrate-faces", 8)
    return subprocess.run([sys.executable, "-m", "facepair", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)


@pytest.fixture(scope="session", autouse=True)
def _samples():
    if not DATA.exists():
        pytest.exit(f"sample media not found at {DATA} (set FACEPAIR_SAMPLES)", returncode=1)


@pytest.fixture(scope="session", autouse=True)
def config_dir(tmp_path_factory):
    """A fresh user config folder (where the C2PA signing key is made on first use). Its
    installation watermark key is a fixed one (every run, every worker): how strongly the
    installation mark reads, and how it nudges the public reader, depend on the key
    (docs/provenance.md), and a test run must not depend on a random draw; the making of a key
    on first use is tested in test_installation_mark.py."""
    folder = tmp_path_factory.mktemp("config") / "facepair"
    os.environ["FACEPAIR_CONFIG_DIR"] = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "watermark.key"
    key.write_text("5eed" * 16 + "\n")
    key.chmod(0o600)
    return folder


def head_of(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` of a video (and its audio) copied into dst without re-encoding: each
    stream's packets up to that decoding time, so every frame kept has what it refers to."""
    import av
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        keep = [st for st in i.streams if st.type in ("video", "audio")]
        out = {st.index: o.add_stream_from_template(st) for st in keep}
        for pkt in i.demux(*keep):
            if pkt.dts is None or pkt.dts * pkt.time_base > seconds:
                continue
            pkt.stream = out[pkt.stream.index]
            o.mux(pkt)
    return dst


@pytest.fixture(scope="session")
def short_samples(tmp_path_factory):
    """The demo's sample footage cut short (3 s of each face clip, 2 s of the address) in the
    layout FACEPAIR_SAMPLES names: the whole pipeline on less footage."""
    from facepair.demo import SAMPLES
    root = tmp_path_factory.mktemp("samples")
    for rel in SAMPLES:
        head_of(DATA / rel, root / rel, 2.0 if rel.startswith("video/") else 3.0)
    return root


def built_once(tmp_path_factory, name: str, build):
    """`build(folder)`'s JSON result, built once per test run rather than once per xdist worker:
    the first worker to ask builds it (under a lock, in the temp folder the run's workers
    share) and the others wait for it and reuse it (about 80 s of setup saved on 2 workers).
    What it builds is read, never changed, by the tests."""
    from filelock import FileLock
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent                   # pytest-of-USER/pytest-N: shared by the workers
    done = root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            done.write_text(json.dumps(build(root / name)))
        return json.loads(done.read_text())


@pytest.fixture(scope="session")
def extracted(tmp_path_factory):
    """Every other frame of the three 256 px clips (as the demo takes them), extracted once at
    64 px (the crop size of every preset but hd): {name: (folder, summary)}."""
    import facepair
    from facepair.faces.extract import ExtractSummary
    clips = {"obama1": OBAMA_CLIP1, "obama2": OBAMA_CLIP2, "reagan": REAGAN_CLIP}

    def build(root):
        return {name: [str(root / name), dataclasses.asdict(
            facepair.extract([clip], root / name, every=EVERY, size=64, progress=False))]
            for name, clip in clips.items()}
    return {name: (Path(folder), ExtractSummary(**summary))
            for name, (folder, summary) in built_once(tmp_path_factory, "facesets", build).items()}


@pytest.fixture(scope="session")
def trained_model(extracted, tmp_path_factory):
    """A model trained briefly (24 steps of 8 faces a side, under a minute on 2 cores without
    bf16) on the Obama and Reagan clips, for the tests of what swap, evaluate and verify write
    (no test here judges its swaps' quality: benchmarks/quality.py does)."""
    def build(model):
        r = run_cli("train", "--a", extracted["obama1"][0], extracted["obama2"][0], "--b",
                    extracted["reagan"][0], "--model", model, "--preset", "seed", "--steps", 24,
                    "--batch-size", 8, "--lr", "3e-4", "--quiet")
        assert r.returncode == 0, r.stderr
        return str(model)
    return Path(built_once(tmp_path_factory, "model", build))
