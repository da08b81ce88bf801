"""The labels on their own, on small made-up pictures (provenance/watermark.py, verify.py,
label.py): fast, and the mutation check's judges for those modules (tools/mutate.py). The
watermark on real footage and after platform changes: test_watermark.py and test_swap.py."""
import hashlib
import json
import warnings

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from facepair.errors import FacepairError
from facepair.provenance import credentials, label, verify as V, watermark as W

from conftest import REAGAN_CLIP


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test makes the keyed tile and pattern afresh (they are cached per process)."""
    for f in (W._basis, W.tile, W._pattern, W._tile_spectrum):
        f.cache_clear()


def _texture(h=240, w=320, seed=0, sd=12.0):
    """A textured grey-ish picture (a blurred noise, like skin and fabric), uint8 RGB."""
    rng = np.random.default_rng(seed)
    g = cv2.GaussianBlur(rng.normal(128, sd * 3, (h, w)), (0, 0), 1.0)
    return np.clip(np.repeat(g[..., None], 3, -1), 0, 255).astype(np.uint8)


def _checker(h, w, d, cell=1):
    """A picture of +-d grey levels around 128 in cells of `cell` px: local std d everywhere."""
    yy, xx = np.mgrid[:h, :w]
    g = 128 + d * (((yy // cell) + (xx // cell)) % 2 * 2 - 1)
    return g.astype(np.uint8)


def test_the_key_payload_and_pattern_do_not_change():
    """Files marked by earlier versions must still verify: the payload, the pattern's spectral
    lines and the keyed tile are pinned (a change here is a change of the mark, not a refactor)."""
    assert W.KEY == 0x5EED_FACE and W.BITS == 64 and W.Z_MIN == 8.0
    assert W.PAYLOAD.tolist() == np.unpackbits(np.frombuffer(
        hashlib.sha256(b"facepair: synthetic media v1").digest()[:8], np.uint8)).tolist()
    lines = {(m, n) for m in range(1, 9) for n in range(-8, 9) if n != 0 and 3 <= np.hypot(m, n) <= 8}
    assert set(zip(W.LINE_M.tolist(), W.LINE_N.tolist())) == lines and len(W.LINE_M) == len(lines)
    m, n = W._band()
    assert sorted(zip(m.tolist(), n.tolist())) == sorted(lines) and len(m) == len(lines)
    t = W.tile(64)
    assert t.shape == (64, 64) and t.dtype == np.float32
    assert float(t.std()) == pytest.approx(1, abs=1e-5) and abs(float(t.mean())) < 1e-5
    assert hashlib.sha256(np.round(t, 3).tobytes()).hexdigest()[:16] == TILE_64_SHA
    spec = np.abs(np.fft.rfft2(t))                             # energy on the band's lines only
    on = np.zeros_like(spec, bool)
    on[W.LINE_N % 64, W.LINE_M] = True
    assert spec[~on].max() < 1e-3 * spec[on].min()
    assert np.allclose(W.tile(40), W.tile(320)[::8, ::8], atol=1e-6) and W.tile(40).shape == (40, 40)


TILE_64_SHA = "4fa0072609ac2164"   # sha256 of the 64 px tile rounded to 0.001


def test_tile_size_follows_the_shorter_side_within_bounds():
    assert W.tile_size(720, 1280) == 64 and W.tile_size(1280, 720) == 64
    assert W.tile_size(1080, 1920) == 96
    assert W.tile_size(240, 320) == 40 and W.tile_size(450, 800) == 40     # 21 and 40: the least
    assert W.tile_size(459, 800) == 41
    assert W.tile_size(4000, 6000) == 256                                   # 356: the most


def test_strength_follows_the_texture_and_holds_psnr():
    limit = 255 * 10 ** (-46 / 20)
    flat = np.full((200, 300), 90, np.uint8)
    assert not W.strength(flat).any()                                       # flat: no mark
    s = W.strength(_checker(120, 160, 3))                                   # std 3: 0.7 x 1.5
    assert s[10:-10, 10:-10] == pytest.approx(0.7 * 1.5, abs=0.02)
    assert s.shape == (120, 160)
    assert W.strength(_checker(120, 160, 2), unit=1.5)[10:-10, 10:-10] == pytest.approx(1.05, abs=0.02)
    loud = W.strength(_checker(120, 160, 10))                               # 3 (the cap), then
    assert loud[10:-10, 10:-10] == pytest.approx(limit, rel=0.05)           # held to PSNR 46
    assert float(np.sqrt(np.mean(loud ** 2))) == pytest.approx(limit, rel=1e-3)
    half = _checker(120, 160, 3)
    half[:, :80] = 128                                                      # flat half, textured half
    s = W.strength(half)
    assert not s[:, :70].any() and s[10:-10, 92:-10] == pytest.approx(1.05, abs=0.02)
    big = _checker(400, 600, 3, cell=4)                                     # measured shrunk 2x
    s = W.strength(big)
    assert s.shape == (400, 600) and s[20:-20, 20:-20] == pytest.approx(1.05, abs=0.05)
    out = np.empty((400, 600), np.float32)
    assert W.strength(big, out=out) is out


def test_embed_adds_the_masked_pattern_to_brightness_only():
    pic = _texture()
    marked = W.embed(pic)
    diff = marked.astype(int) - pic
    assert (diff[..., 0] == diff[..., 1]).all() and (diff[..., 1] == diff[..., 2]).all()   # grey
    grey = cv2.cvtColor(pic, cv2.COLOR_RGB2GRAY)
    pattern, dither = W._pattern(*grey.shape)
    want = W.strength(grey) * pattern
    assert np.abs(diff[..., 0] - want).max() <= 1.0                       # rounded with the dither
    assert abs(float((diff[..., 0] - want).mean())) < 0.02                # unbiased
    assert np.array_equal(diff[..., 0], np.round(want + dither).clip(-255, 255)) or \
        np.abs(diff[..., 0] - (want + dither)).max() <= 0.5 + 1e-4
    psnr = 10 * np.log10(255 ** 2 / np.mean(diff.astype(float) ** 2))
    assert psnr >= 45                       # the README's target (the amplitude: 46, before rounding)
    small = _texture(79, 200)
    assert W.embed(small) is small                                         # too small for 2 tiles
    assert not np.array_equal(W.embed(_texture(80, 200)), _texture(80, 200))   # 2 x 40: marked
    flat = np.full((240, 320, 3), 77, np.uint8)
    assert np.array_equal(W.embed(flat), flat)
    assert np.array_equal(W.embed(pic), marked)                            # the same every time


def test_embed_i420_marks_luma_with_video_units():
    pic = _texture()
    yuv = W.embed_i420(pic)
    plain = cv2.cvtColor(pic, cv2.COLOR_RGB2YUV_I420)
    assert yuv.shape == plain.shape and np.array_equal(yuv[240:], plain[240:])       # chroma
    y = plain[:240]
    pattern, dither = W._pattern(240, 320)
    want = W.strength(y, 255 / 219) * pattern * 219 / 255
    assert np.abs(yuv[:240].astype(float) - y - want).max() <= 1.0
    tiny = _texture(60, 80)
    assert np.array_equal(W.embed_i420(tiny), cv2.cvtColor(tiny, cv2.COLOR_RGB2YUV_I420))


def test_residual_size_and_range():
    assert W.residual(_texture(32, 200)) is None                           # <= 2 x 40 x 0.4
    assert W.residual(_texture(33, 200)).shape == (33, 200)
    r = W.residual(_texture(40, 60))
    assert r is not None and r.shape == (40, 60)
    r = W.residual(_texture(900, 1600, sd=40))
    assert r.shape == (720, 1280) and r.dtype == np.float32                # read at 720 at most
    assert r.min() >= -4 and r.max() <= 4 and r.max() > 2 and abs(float(r.mean())) < 0.05
    flat = W.residual(np.full((100, 120, 3), 50, np.uint8))
    assert np.abs(flat).max() < 1e-3
    faint = W.residual(_texture(100, 120, sd=0.3))                          # a faint texture stays
    assert np.abs(faint).max() < 1                                         # faint (energy + 1)
    dot = np.full((100, 120, 3), 50, np.uint8)
    dot[50, 60] = 255
    assert W.residual(dot).max() == 4 and W.residual(255 - dot).min() == -4   # held to +-4
    s = W._smooth(np.ones((40, 64), np.float32) * 3)
    assert s.shape == (40, 64) and np.allclose(s, 3)


def test_fold_correlate_and_bits_on_the_keyed_tile():
    g = W.GRID
    ones = np.ones((2 * g, 3 * g))
    assert np.array_equal(W._fold(ones, g, g), np.full((g, g), 6.0))      # 6 copies per cell
    half = W._fold(np.ones((g, g)), g / 2, g / 2)                          # period of half a tile:
    assert half.sum() == g * g and half.max() == 4 and np.count_nonzero(half) == g * g // 4
    t = W.tile(g).astype(np.float64)
    z, off = W._correlate(np.roll(t, (5, 9), axis=(0, 1)))
    assert off == (5, 9) and z > 50
    assert W._bits(np.roll(t, (5, 9), axis=(0, 1)), (5, 9)) == 64
    assert W._bits(-t, (0, 0)) == 0                                        # every bit flipped
    assert W._bits(1e-3 * t, (0, 0)) == 64                                 # whatever the contrast
    noisy = t + np.random.default_rng(1).normal(0, 3, t.shape)
    z0 = W._correlate(noisy)[0]
    assert W._correlate(1e-3 * noisy)[0] == pytest.approx(z0, rel=1e-3)       # the evidence does not
    assert W._correlate(1e3 * noisy)[0] == pytest.approx(z0, rel=1e-3)        # depend on contrast
    noise = np.random.default_rng(0).normal(0, 1, (g, g))
    assert W._correlate(noise)[0] < W.Z_MIN


def test_read_finds_the_mark_its_grid_and_nothing_on_an_unmarked_picture():
    pic = _texture(480, 640, sd=20)
    marked = W.embed(pic)
    r = W.read(W.residual(marked))
    tile = W.tile_size(480, 640)
    assert r.found and r.z >= W.Z_MIN and r.bits >= 60
    assert r.period == pytest.approx((tile, tile), rel=0.005)
    r2 = W.read(W.residual(marked[13:, 21:]))                               # cropped: the grid moves
    apart = lambda a, b: min((a - b) % tile, (b - a) % tile)              # on the tile's circle
    assert r2.found and apart(r2.offset[0], tile - 21) <= 1.5 and apart(r2.offset[1], tile - 13) <= 1.5
    r3 = W.read(W.residual(cv2.resize(marked, (960, 720), interpolation=cv2.INTER_CUBIC)))
    assert r3.found and r3.period[0] == pytest.approx(1.5 * tile, rel=0.01)
    plain = W.read(W.residual(pic))
    assert not plain.found and plain.z < W.Z_MIN
    assert W.Reading(8.0, 0, (0, 0), (0, 0)).found and not W.Reading(7.99, 64, (0, 0), (0, 0)).found


# ---- verify.py ---------------------------------------------------------------------------------

def _verdict(**kw):
    base = dict(path="x.png", mark=W.Reading(12.345, 57, (64.04, 64.26), (62.4, 3.6)), tag=label.TAG,
                manifest=credentials.Credentials("facepair", credentials.SOURCE_TYPE, "Valid"), frames=1)
    return V.Verdict(**{**base, **kw})


def test_verdict_lines_say_what_was_found():
    assert str(_verdict()) == (
        "x.png: SYNTHETIC (facepair): watermark FOUND (z 12.3, found at 8; bits agree 57/64; grid "
        "64.0 x 64.3 px at offset 62, 4; 1 frame); tag FOUND; C2PA manifest FOUND (facepair, "
        "compositeWithTrainedAlgorithmicMedia, Valid)")
    v = _verdict(mark=W.Reading(4.66, 41, (29.3, 29.1), (25, 21)), tag=None, manifest=None, frames=90)
    assert str(v) == ("x.png: no facepair marks: watermark not found (z 4.7, found at 8; bits agree "
                      "41/64; grid 29.3 x 29.1 px at offset 25, 21; 90 frames); no tag; no C2PA manifest")
    other = _verdict(mark=None, tag="synthetic, made elsewhere",
                     manifest=credentials.Credentials("", "", "Invalid"))
    assert str(other) == ("x.png: no facepair marks: watermark not found (too small to read); no "
                          "facepair tag (a tag that is not facepair's: 'synthetic, made elsewhere'); "
                          "C2PA manifest FOUND (unknown generator, no source type, Invalid)")


def test_a_file_is_ours_only_by_our_own_marks():
    assert _verdict().marked
    assert _verdict(tag=None, manifest=None).marked                          # the watermark alone
    no_mark = dict(mark=W.Reading(3.0, 30, (1, 1), (0, 0)))
    assert _verdict(**no_mark, manifest=None).marked                         # our tag alone
    assert _verdict(**no_mark, tag=None).marked                              # our manifest alone
    for state in ("Valid", "Trusted"):
        assert _verdict(**no_mark, tag=None, manifest=credentials.Credentials("facepair", "", state)).our_manifest
    for c in (credentials.Credentials("facepair", credentials.SOURCE_TYPE, "Invalid"),
              credentials.Credentials("other", credentials.SOURCE_TYPE, "Valid")):
        assert not _verdict(**no_mark, tag=None, manifest=c).marked
    assert not _verdict(**no_mark, tag="synthetic media", manifest=None).marked
    assert not _verdict(mark=None, tag=None, manifest=None).marked


def test_verdict_json_record():
    """verify --json: the fields the README lists, with their values (fields added later may
    come along)."""
    def holds(record, expected):
        for k, v in expected.items():
            if isinstance(v, dict):
                holds(record[k], v)
            else:
                assert record[k] == v, (k, record[k], v)
    rec = _verdict(mark=W.Reading(12.345, 57, (64.04567, 64.26), (62.4321, 3.6))).to_json()
    holds(rec, {
        "path": "x.png", "synthetic": True,
        "watermark": {"found": True, "z": 12.35, "z_min": 8.0, "bits_agree": 57, "bits": 64,
                      "period_px": [64.046, 64.26], "offset_px": [62.4, 3.6], "frames": 1},
        "tag": label.TAG, "other_tag": None,
        "c2pa": {"generator": "facepair", "source_type": credentials.SOURCE_TYPE, "state": "Valid", "ours": True}})
    rec = _verdict(mark=None, tag="synthetic elsewhere", manifest=None, frames=3).to_json()
    holds(rec, {"path": "x.png", "synthetic": False,
                "watermark": {"found": False, "z": None, "z_min": 8.0, "bits_agree": None, "bits": 64,
                              "period_px": None, "offset_px": None, "frames": 3},
                "tag": None, "other_tag": "synthetic elsewhere", "c2pa": None})
    json.dumps(rec)


def test_verify_reads_an_image_we_wrote_and_an_original(tmp_path):
    out = tmp_path / "marked.png"
    label.write_image(out, _texture(360, 480, sd=20))
    v, = V.verify([out])
    assert v.watermark and v.our_tag and v.our_manifest and v.frames == 1 and v.path == str(out)
    plain = tmp_path / "plain.png"
    Image.fromarray(_texture(360, 480, sd=20)).save(plain)
    v = V.verify_file(plain)
    assert not v.marked and v.tag is None and v.manifest is None and v.mark is not None
    with pytest.raises(FacepairError, match="file not found"):
        V.verify_file(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(FacepairError, match="cannot read .* as an image or video$"):
        V.verify_file(tmp_path / "bad.png")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(FacepairError, match="as an image or video"):
        V.verify_file(tmp_path / "bad.mp4")


def _clip(dst, frames, comment=None, key="comment", size=(256, 256)):
    """A small video: `frames` frames of the Reagan clip (unmarked), with a container comment."""
    with av.open(str(REAGAN_CLIP)) as i, av.open(str(dst), "w") as o:
        if comment is not None:
            o.metadata[key] = comment
        s = o.add_stream("libx264", rate=30)
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        for n, f in enumerate(i.decode(video=0)):
            if n == frames:
                break
            pic = cv2.resize(f.to_ndarray(format="rgb24"), size[::-1], interpolation=cv2.INTER_AREA)
            for q in s.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")):
                o.mux(q)
        for q in s.encode():
            o.mux(q)
    return dst


def _marked_clip(dst, frames, size=(360, 480), black=0, card=(0, 0, 0)):
    """A small video of textured frames, each marked as swap marks video (on Y), after `black`
    frames of one colour, `card` (marked too: the mark has nothing to sit on there)."""
    with av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=30, options={"crf": "18"})
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        for n in range(-black, frames):
            yuv = W.embed_i420(_texture(*size, seed=n, sd=20) if n >= 0 else np.full((*size, 3), card, np.uint8))
            for q in s.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                o.mux(q)
        for q in s.encode():
            o.mux(q)
    return dst


def test_verify_reads_a_file_by_what_it_holds_not_by_its_name(tmp_path):
    """A labelled JPEG saved as .jfif (Chrome on Windows), without an extension or renamed .mp4,
    and a labelled MP4 without an extension or renamed .jpg: each read as what it is, its marks
    and manifest found (they were "cannot read ... as an image or video", or no manifest)."""
    import shutil
    jpeg = tmp_path / "marked.jpg"
    label.write_image(jpeg, _texture(360, 480, sd=20))
    video = _marked_clip(tmp_path / "marked.mp4", 12)
    label.sign_video(video, "marked.mp4")
    for src, names in ((jpeg, ("a.jfif", "a", "a.mp4")), (video, ("v", "v.jpg", "v.bin"))):
        for name in names:
            shutil.copy(src, tmp_path / name)
            v = V.verify_file(tmp_path / name)
            assert v.watermark and v.our_manifest and (v.our_tag or src == video), (name, str(v))


def test_a_video_whose_metadata_is_not_utf8_is_read(tmp_path):
    """A Latin-1 title ("Café 2009", as old AVIs and camcorders write) made PyAV refuse the whole
    file: verify said "cannot read", swap "cannot open video ... 'utf-8' codec can't decode"."""
    from facepair.media.video import iter_video
    clip = tmp_path / "latin1.avi"
    with av.open(str(clip), "w") as o:
        o.metadata["title"] = "Caf_ 2009"
        s = o.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        for n in range(10):
            o.mux(s.encode(av.VideoFrame.from_ndarray(_texture(256, 256, seed=n, sd=20), format="rgb24")))
        o.mux(s.encode())
    data = clip.read_bytes()
    assert data.count(b"Caf_ 2009") == 1
    clip.write_bytes(data.replace(b"Caf_ 2009", b"Caf\xe9 2009"))
    assert len(list(iter_video(clip))) == 10
    v = V.verify_file(clip)
    assert v.frames == 10 and not v.marked


def test_names_are_printed_as_one_line_that_cannot_draw_on_the_terminal(tmp_path):
    """A file named to print a verdict line of its own (a newline, then "x.jpg: SYNTHETIC ...")
    or to move the cursor (an escape sequence), as verify lists it and as an error names it."""
    import shutil
    from conftest import OBAMA_PHOTOS, run_cli
    fake = tmp_path / "x.jpg: SYNTHETIC (facepair): made by facepair\nreal.jpg"
    shutil.copy(OBAMA_PHOTOS / "obama.jpg", fake)
    junk = tmp_path / "evil\x1b[2K\r\x1b[1A.jpg"
    junk.write_bytes(b"not a picture")
    r = run_cli("verify", fake, junk)
    assert r.returncode == 1
    out, err = r.stdout.splitlines(), r.stderr.splitlines()
    assert len(out) == 1 and "made by facepair\\nreal.jpg: no facepair marks" in out[0], r.stdout
    assert len(err) == 1 and "\x1b" not in err[0] and "evil\\x1b[2K\\r" in err[0], r.stderr


def test_a_picture_of_32_px_is_too_small_to_read_not_minus_infinity(tmp_path):
    """At exactly 32 px on its shorter side the reader had no period to try: z -inf in the text
    and -Infinity in --json (not JSON; the web app's answer failed on it)."""
    for h, w in ((32, 300), (300, 32), (32, 64), (33, 300)):
        p = tmp_path / f"{h}x{w}.png"
        Image.fromarray(_texture(h, w, sd=20)).save(p)
        v = V.verify_file(p)
        assert v.mark is None or np.isfinite(v.mark.z), (h, w, str(v))
        json.dumps(v.to_json(), allow_nan=False)
        assert "inf" not in str(v)


def test_verify_finds_the_mark_summed_over_a_videos_frames(tmp_path):
    v = V.verify_file(_marked_clip(tmp_path / "marked.mp4", 6))
    assert v.frames == 6 and v.watermark and v.marked and v.mark.z >= W.Z_MIN
    one = V.verify_file(_marked_clip(tmp_path / "one.mp4", 1))
    assert v.mark.z > one.mark.z                                          # frames add up
    faded = V.verify_file(_marked_clip(tmp_path / "faded.mp4", 6, black=100))   # 100 black first
    assert faded.frames == 106 and faded.marked and faded.mark.z >= W.Z_MIN, faded.mark
    red = V.verify_file(_marked_clip(tmp_path / "red.mp4", 6, black=100, card=(200, 30, 30)))
    assert red.frames == 106 and red.marked, red.mark           # a title card of one colour too
    dark = V.verify_file(_marked_clip(tmp_path / "dark.mp4", 0, black=120))     # only black
    assert dark.frames == 120 and dark.mark is not None and not dark.marked


def test_verify_passes_over_flat_frames_only_up_to_max_scan(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "MAX_SCAN", 20)
    v = V.verify_file(_marked_clip(tmp_path / "late.mp4", 6, black=30))
    assert v.frames == 20 and not v.marked         # the marked frames lie past the scan
    tiny = V.verify_file(_clip(tmp_path / "tiny.mkv", 3, size=(24, 24)))
    assert tiny.mark is None and tiny.frames == 3 and "too small to read" in str(tiny)
    assert not tiny.mirrored and tiny.to_json()["watermark"]["mirrored"] is False


def test_verify_reads_up_to_90_video_frames_and_the_container_tag(tmp_path):
    v = V.verify_file(REAGAN_CLIP)                                       # 782 frames: 90 read
    assert v.frames == V.MAX_FRAMES == 90 and not v.marked and v.tag is None
    short = _clip(tmp_path / "short.mkv", 5, comment=label.TAG)
    v = V.verify_file(short)
    assert v.frames == 5 and v.tag == label.TAG and v.our_tag and v.marked
    other = _clip(tmp_path / "other.mkv", 3, comment="Synthetic, by someone else", key="DESCRIPTION")
    assert V.verify_file(other).tag == "Synthetic, by someone else"
    assert V.verify_file(_clip(tmp_path / "plain.mkv", 3, comment="holiday")).tag is None
    assert V._video_tag(tmp_path / "missing.mp4") is None


# ---- label.py ----------------------------------------------------------------------------------

def test_our_tag_is_recognised_and_a_mention_of_synthetic_is_not():
    assert label.is_ours(label.TAG) and label.is_ours(f"facepair: {label.TAG}")
    assert label.TAG.startswith(label.OURS) and label.TAG.endswith("compositeWithTrainedAlgorithmicMedia")
    assert not label.is_ours("synthetic media") and not label.is_ours(None) and not label.is_ours("")


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".xyz"])
def test_write_image_labels_each_format(tmp_path, suffix):
    """Every picture format swap writes carries the tag and a manifest but BMP, which holds
    neither (WebP and TIFF carried only the watermark, and the summary said "tag"), and the
    summary says what each carries."""
    pic = _texture(240, 320, sd=20)
    out = tmp_path / f"o{suffix}"
    label.write_image(out, pic, quality=90)
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF",
               ".tiff": "TIFF", ".bmp": "BMP", ".xyz": "PNG"}
    with Image.open(out) as img:
        assert img.size == (320, 240)
        assert img.format == formats[suffix]
        if suffix in (".jpg", ".jpeg"):
            assert img.info["comment"] == f"facepair: {label.TAG}".encode()
        if suffix == ".png":
            assert img.info["facepair"] == label.TAG
    labelled = suffix not in (".bmp", ".xyz")
    tag = label.image_tag(out)
    assert (tag is not None and label.is_ours(tag)) == labelled
    m = credentials.read(out)
    assert (m is not None and m.generator == "facepair" and m.state == "Valid") == labelled
    said = label.labels(out)
    assert said.startswith("watermark") and ("tag" in said.split(" (")[0]) == labelled
    assert ("C2PA" in said.split(" (")[0]) == labelled
    assert not list(tmp_path.glob(".*"))                                  # written atomically
    back = np.asarray(Image.open(out).convert("RGB")).astype(int)
    if suffix == ".png":                          # lossless: both marks (this installation's key) exactly
        assert np.array_equal(back, W.embed(pic, credentials.watermark_key()))


def test_quality_of_jpeg_output(tmp_path):
    pic = _texture(240, 320, sd=20)
    label.write_image(tmp_path / "hi.jpg", pic, quality=95)
    label.write_image(tmp_path / "lo.jpg", pic, quality=40)
    label.write_image(tmp_path / "default.jpg", pic)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size
    assert abs((tmp_path / "default.jpg").stat().st_size - (tmp_path / "hi.jpg").stat().st_size) < 64


def test_sign_video_attaches_a_valid_manifest(tmp_path):
    clip = _clip(tmp_path / "v.mp4", 3)
    label.sign_video(clip, "v.mp4")
    m = credentials.read(clip)
    assert m is not None and m.generator == "facepair" and m.synthetic and m.state == "Valid"


def test_a_signing_failure_warns_and_keeps_the_other_labels(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise RuntimeError("no key")
    monkeypatch.setattr(credentials, "sign_bytes", fail)
    monkeypatch.setattr(credentials, "sign_file", fail)
    with pytest.warns(UserWarning, match=r"content credentials not attached to .*o\.png: no key"):
        assert label.write_image(tmp_path / "o.png", _texture()) is False
    assert label.is_ours(label.image_tag(tmp_path / "o.png")) and credentials.read(tmp_path / "o.png") is None
    with pytest.warns(UserWarning, match="x.jpg: no key"):
        assert label.attach_credentials(b"abc", tmp_path / "x.jpg") == (b"abc", False)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video")
    with pytest.warns(UserWarning, match="content credentials not attached to .*v.mp4: no key"):
        assert label.sign_video(video, "t") is False
    assert video.read_bytes() == b"video"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        label.sign_video(tmp_path / "v.mkv", "t")                         # no manifest in MKV


def test_image_tag_reads_text_and_comments_that_call_it_synthetic(tmp_path):
    pic = Image.fromarray(_texture(60, 80))
    pic.save(tmp_path / "c.jpg", comment=b"Synthetic \xff picture")
    assert label.image_tag(tmp_path / "c.jpg") == "Synthetic \ufffd picture"
    pic.save(tmp_path / "n.jpg", comment=b"holiday")
    assert label.image_tag(tmp_path / "n.jpg") is None
    info = __import__("PIL.PngImagePlugin", fromlist=["PngInfo"]).PngInfo()
    info.add_text("facepair", "synthetic thing")
    pic.save(tmp_path / "t.png", pnginfo=info)
    assert label.image_tag(tmp_path / "t.png") == "synthetic thing"
    pic.save(tmp_path / "none.png")
    assert label.image_tag(tmp_path / "none.png") is None
    (tmp_path / "junk.png").write_bytes(b"junk")
    assert label.image_tag(tmp_path / "junk.png") is None


def test_an_xmp_description_is_read_in_time_linear_in_the_packet(tmp_path):
    """The XMP description (WebP's tag) is read; a packet crafted against the regular expression
    that read it (400 openings of <dc:description>, then 800 of <rdf:li>, never closed: 12.8 KB)
    took 12 s holding Python's lock, and 60 KB minutes: the web app's Verify stopped answering."""
    import time
    pic = Image.fromarray(_texture(60, 80))
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description><dc:description><rdf:Alt>'
           b'<rdf:li xml:lang="x-default">A synthetic &amp; made-up picture</rdf:li></rdf:Alt>'
           b'</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>')
    pic.save(tmp_path / "t.webp", xmp=xmp)
    assert label.image_tag(tmp_path / "t.webp") == "A synthetic & made-up picture"
    for crafted in (b"<dc:description>" * 400 + b"<rdf:li>" * 800, b"<dc:description>" * 1800 + b"<rdf:li>" * 4000):
        pic.save(tmp_path / "x.jpg", xmp=crafted)
        t = time.monotonic()
        assert label.image_tag(tmp_path / "x.jpg") is None
        assert time.monotonic() - t < 1.0


def test_reading_credentials_fetches_nothing_a_file_names(tmp_path):
    """A picture with no manifest of its own whose XMP names a remote one (dcterms:provenance):
    c2pa fetched that address by default, so checking a file told its sender when and from where
    (and could reach addresses inside the user's network). Nothing is requested now."""
    import http.server
    import threading
    asked = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/manifest.c2pa"
        xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               f'<rdf:Description rdf:about="" xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="{url}"/>'
               '</rdf:RDF></x:xmpmeta>').encode()
        Image.fromarray(_texture(60, 80)).save(tmp_path / "r.jpg", xmp=xmp)
        assert credentials.read(tmp_path / "r.jpg") is None
        assert V.verify_file(tmp_path / "r.jpg").manifest is None
    finally:
        srv.shutdown()
    assert asked == []


def test_verify_reads_a_mirrored_picture_and_says_so(tmp_path):
    """A marked picture flipped left to right (re-posted video often is) is still found, and the
    verdict says the picture was flipped; the picture as made says nothing of the kind."""
    pic = W.embed(_texture(480, 640, sd=20))
    for name, img, flipped in (("made.png", pic, False), ("flipped.png", np.ascontiguousarray(pic[:, ::-1]), True)):
        Image.fromarray(img).save(tmp_path / name)
        v = V.verify_file(tmp_path / name)
        assert v.watermark and v.mirrored is flipped, (name, v.mark)
        assert ("; the picture was flipped)" in str(v)) is flipped
        assert v.to_json()["watermark"]["mirrored"] is flipped
    plain = V.verify_file(tmp_path / "made.png")
    assert plain.mark.period == pytest.approx((W.tile_size(480, 640),) * 2, rel=0.01)


def test_an_output_that_cannot_be_written_leaves_the_old_one_whole(tmp_path, monkeypatch):
    """A labelled picture written over an earlier output, the disk full when the new bytes are
    flushed: the error reaches the caller, the earlier file keeps its bytes, no temporary file
    stays beside it (the same path every output and model file takes: media/files.py)."""
    import errno
    import os
    out = tmp_path / "swap.png"
    out.write_bytes(b"the earlier output")
    rgb = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    label.image_bytes(out, rgb)                    # the keys made (first use) before the disk fills

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        label.write_image(out, rgb)
    assert out.read_bytes() == b"the earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swap.png"]
    monkeypatch.undo()
    label.write_image(out, rgb)                    # with room again: replaced, labelled
    assert V.verify_file(out).our_tag


def test_writes_replace_a_hard_link_planted_at_the_name(tmp_path):
    """A crop, a report's loss plot and a labelled output written where a hard link to another
    file was planted (an archive unpacked with links): the name gets a new file, the other file
    keeps its bytes."""
    import os
    from facepair.evaluate.report import _loss_plot
    from facepair.media.image import write_image
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"not yours")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "log.csv").write_text("step,time_s,loss_a,loss_b\n1,1,0.5,0.4\n2,2,0.4,0.3\n")
    rgb = np.zeros((64, 64, 3), np.uint8)
    for name, write in (("crop.png", lambda p: write_image(p, rgb)),
                        ("losses.png", lambda p: _loss_plot(tmp_path / "model", p)),
                        ("swap.png", lambda p: label.write_image(p, rgb))):
        os.link(victim, tmp_path / name)
        write(tmp_path / name)
        assert victim.read_bytes() == b"not yours", name
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
