"""facepair extract on the shared footage and photos."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import facepair
from facepair.faces.align import map_points
from facepair.faces.landmarks import eye_centres
from facepair.media.video import video_info

from conftest import ADDRESS, BIDEN_PHOTO, DATA, EVERY, OBAMA_PHOTOS, run_cli


@pytest.mark.parametrize("name", ["obama1", "obama2", "reagan"])
def test_every_clip_frame_read_gives_exactly_one_face(extracted, name):
    folder, summary = extracted[name]
    frames = video_info(DATA / {"obama1": "faces/obama/obama_clip1.mp4",
                                "obama2": "faces/obama/obama_clip2.mp4",
                                "reagan": "faces/reagan/reagan_clip1.mp4"}[name])["frames"]
    meta = json.loads((folder / "faceset.json").read_text())
    assert summary.frames_read == -(-frames // EVERY)
    assert summary.faces_kept == summary.frames_read and summary.frames_without_face == 0
    assert summary.rejected["not_largest"] == 0          # never a second face
    assert sorted(f["frame"] for f in meta["faces"]) == list(range(0, frames, EVERY))


def test_faceset_format(extracted):
    folder, _ = extracted["reagan"]
    meta = json.loads((folder / "faceset.json").read_text())
    assert meta["format"] == "facepair-faceset" and meta["version"] == 1 and meta["size"] == 64
    assert len(meta["template"]) == 51
    face = meta["faces"][0]
    assert {"file", "source", "frame", "bbox", "landmarks", "transform"} <= set(face)
    assert np.array(face["landmarks"]).shape == (68, 2)
    assert np.array(face["transform"]).shape == (2, 3)
    img = cv2.imread(str(folder / face["file"]))
    assert img.shape == (64, 64, 3)
    # landmarks are in frame coordinates (the clip is 256 px): the transform maps them into the crop
    inside = map_points(np.array(face["transform"]), np.array(face["landmarks"]))[17:]
    assert (inside > 0).all() and (inside < 64).all()
    assert np.array(face["landmarks"]).max() > 64


@pytest.mark.parametrize("name", ["obama1", "obama2", "reagan"])
def test_aligned_eye_centres_are_steady(extracted, name):
    folder, _ = extracted[name]
    meta = json.loads((folder / "faceset.json").read_text())
    eyes = np.array([map_points(np.array(f["transform"]), eye_centres(np.array(f["landmarks"])))
                     for f in meta["faces"]])
    assert eyes.std(axis=0).max() < 1.5


def test_photos_at_the_default_presets_size_with_one_sharpness_scale(tmp_path):
    """By default faces are cut at the default preset's crop size (hd: 128 px); sharpness is
    measured at 64 px whatever the size, so --min-blur means the same for both."""
    from facepair.model.presets import DEFAULT_PRESET, PRESETS
    # a photo named besides its folder, and through a link, is read once (its face was kept 3x)
    (tmp_path / "link.jpg").symlink_to(OBAMA_PHOTOS / "obama.jpg")
    s = facepair.extract([OBAMA_PHOTOS, OBAMA_PHOTOS / "obama.jpg", tmp_path / "link.jpg"],
                         tmp_path / "fs", progress=False)
    assert s.inputs == 3 and s.faces_kept == 3 and not s.unreadable
    meta = json.loads((tmp_path / "fs/faceset.json").read_text())
    assert meta["size"] == PRESETS[DEFAULT_PRESET].model.size == 128
    facepair.extract([OBAMA_PHOTOS], tmp_path / "small", size=64, progress=False)
    small = json.loads((tmp_path / "small/faceset.json").read_text())
    for big, low in zip(meta["faces"], small["faces"]):
        assert abs(big["blur"] / low["blur"] - 1) < 0.25, (big["blur"], low["blur"])


def test_every_30_on_the_720p_video(tmp_path):
    # (--json into a folder not made yet: written, not an error after the work)
    r = run_cli("extract", OBAMA_PHOTOS / "obama.jpg", "-o", tmp_path / "one", "--json",
                tmp_path / "new/summary.json", "--quiet")
    assert r.returncode == 0 and json.loads((tmp_path / "new/summary.json").read_text())["faces_kept"] == 1, r.stderr
    s = facepair.extract([ADDRESS], tmp_path / "fs", every=30, progress=False)
    assert s.frames_read == -(-video_info(ADDRESS)["frames"] // 30)
    assert s.faces_kept == s.frames_read
    meta = json.loads((tmp_path / "fs/faceset.json").read_text())
    assert [f["frame"] for f in meta["faces"]][:3] == [0, 30, 60]


def test_identity_keeps_obama_drops_biden(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in [*OBAMA_PHOTOS.glob("*.jpg"), BIDEN_PHOTO]:
        (photos / p.name).symlink_to(p)
    r = run_cli("extract", photos, "-o", tmp_path / "fs", "--identity", OBAMA_PHOTOS / "obama.jpg",
                "--quiet")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "fs/faceset.json").read_text())
    sources = [f["source"] for f in meta["faces"]]
    assert len(sources) == 3 and not any("biden" in s for s in sources)
    assert "not identity 1" in r.stdout
    # --threshold moves the line: 0.05 keeps only the reference photo itself, 0.95 everyone
    for threshold, kept in ((0.05, ["obama.jpg"]), (0.95, ["biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg"])):
        out = tmp_path / f"fs{threshold}"
        r = run_cli("extract", photos, "-o", out, "--identity", OBAMA_PHOTOS / "obama.jpg",
                    "--threshold", threshold, "--quiet")
        assert r.returncode == 0, r.stderr
        meta = json.loads((out / "faceset.json").read_text())
        assert sorted(Path(f["source"]).name for f in meta["faces"]) == kept, (threshold, r.stdout)


def test_haar_and_no_align(tmp_path):
    clip = DATA / "faces/obama/obama_clip1.mp4"
    r = run_cli("extract", clip, "-o", tmp_path / "haar", "--detector", "haar", "--every", "20",
                "--no-align", "--size", 64, "--quiet")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "haar/faceset.json").read_text())
    assert meta["detector"] == "haar" and meta["aligned"] is False
    assert len(meta["faces"]) == 31                       # frames 0, 20, ..., 600
    m = np.array(meta["faces"][0]["transform"])
    x0, y0, x1, y1 = meta["faces"][0]["bbox"]
    assert m[0, 1] == 0 and m[1, 0] == 0                  # a plain box crop, no rotation
    assert np.allclose(map_points(m, np.array([[x0, y0], [x1, y1]])), [[0, 0], [64, 64]], atol=0.01)
    from facepair.faces.faceset import load_index
    assert load_index(tmp_path / "haar")["template"] == []     # it loads (train, evaluate, --append)
    # the same clip appended again (an interrupted extract re-run, as its message advises) adds
    # no second copy of any frame's face
    r = run_cli("extract", clip, "-o", tmp_path / "haar", "--detector", "haar", "--every", "20",
                "--no-align", "--size", 64, "--append", "--quiet")
    assert r.returncode == 0 and "faces kept: 0" in r.stdout and "already in set 31" in r.stdout, r
    assert len(json.loads((tmp_path / "haar/faceset.json").read_text())["faces"]) == 31


def test_cnn_detector(tmp_path):
    """--detector cnn finds the face with dlib's CNN: its box is not the HOG detector's."""
    boxes = {}
    for detector in ("cnn", "hog"):
        s = facepair.extract([OBAMA_PHOTOS / "obama2.jpg"], tmp_path / detector, detector=detector,
                             progress=False)
        assert s.faces_kept == 1
        meta = json.loads((tmp_path / detector / "faceset.json").read_text())
        assert meta["detector"] == detector
        boxes[detector] = np.array(meta["faces"][0]["bbox"], float)
    assert np.abs(boxes["cnn"] - boxes["hog"]).max() > 2, boxes


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 10)
    (inputs / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (inputs / "obama.jpg").symlink_to(OBAMA_PHOTOS / "obama.jpg")
    for n in range(50):        # a photo export's sidecars: passed over, not a warning each
        (inputs / f"obama{n}.jpg.json").write_text("{}")
    r = run_cli("extract", inputs, "-o", tmp_path / "fs", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "unreadable files: 2" in r.stdout and "faces kept: 1" in r.stdout
    assert "Traceback" not in r.stderr and ".json" not in r.stderr + r.stdout


def test_no_face_exits_nonzero_with_one_line(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(inputs / f"noise{i}.png"), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    r = run_cli("extract", inputs, "-o", tmp_path / "fs", "--quiet")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["facepair: error: no face found in 3 frame(s) of 3 input file(s)"]
    assert not (tmp_path / "fs").exists()
    # into a folder the user made: left as it was, so that the retry with the right footage
    # works (an empty faces/ left there made it "not empty", and with --append "not a face set")
    (tmp_path / "mine").mkdir()
    r = run_cli("extract", inputs, "-o", tmp_path / "mine", "--quiet")
    assert r.returncode == 1 and list((tmp_path / "mine").iterdir()) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old/faces").mkdir()                           # as earlier versions left it
    for folder in ("mine", "old"):
        s = facepair.extract(str(OBAMA_PHOTOS / "obama.jpg"), tmp_path / folder, progress=False)
        assert s.faces_kept == 1                   # (one path as a string: not its letters)


def test_missing_input_and_non_empty_output(tmp_path):
    r = run_cli("extract", tmp_path / "nope.mp4", "-o", tmp_path / "fs")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == \
        [f"facepair: error: input not found: {tmp_path / 'nope.mp4'}"]
    photo = OBAMA_PHOTOS / "obama.jpg"
    assert run_cli("extract", photo, "-o", tmp_path / "fs", "--quiet").returncode == 0
    r = run_cli("extract", photo, "-o", tmp_path / "fs", "--quiet")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"facepair: error: output folder is not empty: {tmp_path / 'fs'} (use --append to add faces to an existing face set)"]
    r = run_cli("extract", OBAMA_PHOTOS / "obama2.jpg", "-o", tmp_path / "fs", "--append", "--quiet")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "fs/faceset.json").read_text())
    assert [f["file"] for f in meta["faces"]] == ["faces/000000.png", "faces/000001.png"]


def test_help_describes_every_option():
    r = run_cli("extract", "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--detector", "--size", "--padding", "--no-align", "--every", "--all-faces",
                 "--identity", "--threshold", "--min-size", "--min-blur", "--append"):
        assert flag in r.stdout


def test_chosen_video_frames_are_the_frames_a_full_pass_gives():
    """iter_video(only=...) gives exactly the wanted frames (the others are decoded, not
    converted) and stops after the last; evaluate and calibration read source frames this way."""
    from facepair.media.video import iter_video
    clip = DATA / "faces/obama/obama_clip1.mp4"
    full = {i: f for i, f in iter_video(clip) if i in (0, 7, 40)}
    chosen = list(iter_video(clip, only={40, 7, 0}))
    assert [i for i, _ in chosen] == [0, 7, 40]
    assert all(np.array_equal(f, full[i]) for i, f in chosen)
    assert list(iter_video(clip, only=set())) == []


def test_dlib_models_load_once():
    """Each model loads once (a second each; evaluate builds several users of them): the landmark
    predictor and the embedding network (dlib's, read into torch) for all threads, the detectors
    once per thread, since they keep scratch state while they run; dlib's own embedding network
    is never loaded."""
    import subprocess
    import sys
    prog = """
import threading, dlib
loads = {}
def counted(name, make):
    def f(*a, **k):
        loads[name] = loads.get(name, 0) + 1
        return make(*a, **k)
    return f
for name in ("shape_predictor", "face_recognition_model_v1", "get_frontal_face_detector"):
    setattr(dlib, name, counted(name, getattr(dlib, name)))
from facepair.faces.detect import make_detector
from facepair.faces.identity import Embedder
from facepair.faces.landmarks import Landmarker
from facepair.media.image import read_image
img = read_image(%r)
users = [(Landmarker(), Embedder(), make_detector("hog")) for _ in range(3)]
box = users[0][2](img)[0]
marks = [lm(img, box) for lm, _, _ in users]
same = all((m == marks[0]).all() for m in marks)
def other_thread():
    lm, emb, det = Landmarker(), Embedder(), make_detector("hog")
    lm(img, det(img)[0]), emb.from_landmarks(img, marks[0])
t = threading.Thread(target=other_thread)
t.start(), t.join()
from facepair.faces import descriptor
print(same, loads["shape_predictor"], loads.get("face_recognition_model_v1", 0), loads["get_frontal_face_detector"],
      len(descriptor._net))
""" % str(OBAMA_PHOTOS / "obama.jpg")
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # landmarks and the embedding network (in torch, not dlib's): one load for every user in
    # every thread; the detector: one per thread (two threads)
    assert r.stdout.split() == ["True", "1", "0", "2", "1"], r.stdout


def test_embeddings_are_dlibs_own_numbers():
    """The face descriptor runs in torch from dlib's model file (faces/descriptor.py): the same
    128 numbers as dlib's own network on real faces (photos and face-set crops of four people),
    one at a time and in batches, and the same verdicts (distances within 1e-5)."""
    import dlib

    from facepair.faces.detect import make_detector, model_file
    from facepair.faces.identity import Embedder
    from facepair.faces.landmarks import Landmarker
    from facepair.media.image import read_image
    from facepair.media.video import iter_video
    from facepair.faces.identity import _shape
    emb, det, lm = Embedder(), make_detector("hog"), Landmarker()
    net = dlib.face_recognition_model_v1(model_file("dlib_face_recognition_resnet_model_v1.dat"))
    chips = []
    for photo in (OBAMA_PHOTOS / "obama.jpg", OBAMA_PHOTOS / "obama2.jpg", BIDEN_PHOTO):
        img = read_image(photo)
        marks = lm(img, det(img)[0])
        chips.append(emb.chip(img, marks))
        # from the frame, as dlib cuts and embeds it itself
        assert np.abs(emb.from_landmarks(img, marks) - np.array(net.compute_face_descriptor(img, _shape(marks)))).max() < 1e-5
    for who in ("reagan/reagan_clip1.mp4", "feifeili/feifeili_clip1.mp4", "andrew/andrew_clip1.mp4"):
        for _, frame in iter_video(DATA / "faces" / who, only={0, 40}):
            chips.append(emb.chip(frame, lm(frame, det(frame)[0])))
    theirs = np.array([net.compute_face_descriptor(c) for c in chips], np.float32)
    ours, one = emb.many(chips), np.stack([emb.from_aligned(c) for c in chips])
    print(f"largest difference from dlib's: batched {np.abs(ours - theirs).max():.2e}, "
          f"one at a time {np.abs(one - theirs).max():.2e}")
    assert np.abs(ours - theirs).max() < 1e-5 and np.abs(one - theirs).max() < 1e-5
    d = lambda e: np.linalg.norm(e[:, None] - e[None], axis=2)     # noqa: E731
    assert np.abs(d(ours) - d(theirs)).max() < 1e-5 and (d(theirs) > 0.6).any() and (d(theirs) < 0.6).any()


def test_a_damaged_or_other_model_file_is_one_line_error(tmp_path):
    """The descriptor's weights come from dlib's model file: a truncated copy, another network's
    file (dlib's face detector), a changed layout (the first conv 5 x 5 instead of 7 x 7) or a
    missing file is refused with one line."""
    from facepair.errors import FacepairError
    from facepair.faces.descriptor import DescriptorNet
    from facepair.faces.detect import model_file
    data = open(model_file("dlib_face_recognition_resnet_model_v1.dat"), "rb").read()
    first = data.index(b"con_4")
    sizes = b"\x01\x20\x01\x07\x01\x07\x01\x02"          # 32 filters, 7 x 7, stride 2
    assert data.index(sizes, first) < first + 20000
    cut, changed = tmp_path / "cut.dat", tmp_path / "changed.dat"
    cut.write_bytes(data[:len(data) // 2])
    changed.write_bytes(data.replace(sizes, b"\x01\x20\x01\x05\x01\x05\x01\x02", 1))
    for path in (cut, model_file("mmod_human_face_detector.dat"), changed, tmp_path / "missing.dat"):
        with pytest.raises(FacepairError) as e:
            DescriptorNet(path)
        assert "face descriptor model" in str(e.value) and "\n" not in str(e.value)
