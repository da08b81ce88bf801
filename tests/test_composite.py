"""How a swapped face sits in its frame (evaluate's composite figures, metrics.composite): each
figure checked on a photo against itself (the neutral value) and on faces deliberately made
worse the way a swap goes wrong: recoloured, patched with another skin tone, softened."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import BIDEN_PHOTO, OBAMA_PHOTOS
from facepair.evaluate.metrics import border_strip, composite, composite_regions
from facepair.evaluate.report import write_html
from facepair.faces import align
from facepair.faces.detect import make_detector
from facepair.faces.landmarks import Landmarker, inter_ocular
from facepair.media.image import read_image
from facepair.swap.compose import face_mask, match_color, paste


@pytest.fixture(scope="module", params=[OBAMA_PHOTOS / "obama.jpg", BIDEN_PHOTO], ids=["obama", "biden"])
def face(request):
    f = read_image(request.param)
    marks = Landmarker()(f, make_detector("hog")(f)[0])
    hull = np.zeros(f.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(marks).astype(np.int32)), 1)
    # pasted as swap pastes: inside the landmark hull, eroded and feathered
    alpha = cv2.GaussianBlur(cv2.erode(hull, np.ones((5, 5), np.uint8)).astype(np.float32), (0, 0), 3)[..., None]
    return f, marks, lambda g: (g * alpha + f * (1 - alpha)).clip(0, 255).astype(np.uint8)


def test_a_frame_against_itself_is_neutral(face):
    f, marks, _ = face
    regions = composite_regions(marks, f.shape)
    assert all(m.sum() > 500 for m in regions.values())
    assert not (regions["inside"] & regions["outside"]).any() and not (regions["skin"] & regions["outside"]).any()
    assert composite(f, f, marks) == {"skin_tone": 0.0, "seam": 1.0, "mottling": 1.0, "mottling_chroma": 1.0}


def test_a_face_of_another_tone_is_flagged_by_the_skin_tone(face):
    """Pinker and lighter than the frame around it (the swap's most visible fault)."""
    f, marks, paste = face
    pinker = paste(f.astype(np.float32) * [1.12, 0.97, 0.88] + [8, 0, 0])
    c = composite(f, pinker, marks)
    assert c["skin_tone"] > 2.0 and 0.9 < c["mottling_chroma"] < 1.1, c       # uniform: no patches


def test_a_face_of_patches_of_two_skin_tones_is_flagged_by_the_mottling(face):
    """Brown patches on the face (the patchwork a small face set gave): the colour mottling
    rises well above 1; a uniform recolouring or a blur does not raise it."""
    f, marks, paste = face
    rng = np.random.default_rng(0)
    field = cv2.GaussianBlur(rng.standard_normal(f.shape[:2]).astype(np.float32), (0, 0),
                             0.2 * inter_ocular(marks[None])[0])
    patched = paste(f.astype(np.float32) + (field > 0.5 * field.std())[..., None] * np.array([-20., -35, -45]))
    c = composite(f, patched, marks)
    assert c["mottling_chroma"] > 1.4, c
    soft = composite(f, paste(cv2.GaussianBlur(f, (0, 0), 3).astype(np.float32)), marks)
    assert soft["mottling_chroma"] < 1.1 and soft["seam"] < 0.8, soft        # softer, not patched


def test_no_figures_where_the_face_is_too_small_to_measure(face):
    f, marks, _ = face
    small = cv2.resize(f, None, fx=0.05, fy=0.05, interpolation=cv2.INTER_AREA)
    assert composite(small, small, marks * 0.05) is None


def test_color_skin_clears_patches_of_another_skin_colour(face):
    """swap's --color skin on a face that is both pinker than the frame and patched with another
    skin tone (as a barely trained model or a small face set gives): lab (the whole crop's mean
    and spread) takes the tone but leaves the patches; skin also clears the patches' colour,
    and keeps the face's own lightness (lab's: it carries the identity) and fine detail."""
    f, marks, _ = face
    m = align.align_transform(marks, 128, 0.15)
    crop, crop_marks = align.warp_crop(f, m, 128), align.map_points(m, marks)
    rng = np.random.default_rng(1)
    field = cv2.GaussianBlur(rng.standard_normal((128, 128)).astype(np.float32), (0, 0), 12)
    bad = (crop.astype(np.float32) * [1.12, 0.97, 0.88] + [8, 0, 0] +
           (field > 0.5 * field.std())[..., None] * np.array([-30., -52, -68])).clip(0, 255).astype(np.uint8)
    mask = face_mask("hull", crop_marks, 128, 1.0, 4.0)
    figures, faces = {}, {}
    for mode in ("none", "lab", "skin"):
        g = f.copy()
        faces[mode] = match_color(bad, crop, mask, mode, crop_marks)
        paste(g, faces[mode], mask, m)
        figures[mode] = composite(f, g, marks)
    none, lab, skin = figures["none"], figures["lab"], figures["skin"]
    assert none["skin_tone"] > 3 and none["mottling_chroma"] > 1.5, figures
    assert abs(lab["skin_tone"]) < 1 and lab["mottling_chroma"] > 1.3, figures
    assert abs(skin["skin_tone"]) < 1 and skin["mottling_chroma"] < 1.15, figures
    lightness = [cv2.cvtColor(faces[m], cv2.COLOR_RGB2LAB)[..., 0].astype(int) for m in ("lab", "skin")]
    assert np.abs(lightness[0] - lightness[1]).mean() < 1.0          # colour moved, not light

    def fine(x):                      # the detail finer than the colour field: the swap's own
        g = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return (g - cv2.GaussianBlur(g, (0, 0), 2))[mask > 0.5]
    assert np.corrcoef(fine(faces["skin"]), fine(bad))[0, 1] > 0.9
    # without landmarks skin is lab
    assert np.array_equal(match_color(bad, crop, mask, "skin"), faces["lab"])


def test_the_reports_border_strip_shows_source_above_swap_at_full_resolution(face, tmp_path):
    """evaluate's report: squares of the face's outline at five jaw points, the source's pixels
    above the swap's, unscaled; none where the face reaches the frame's edge."""
    f, marks, paste = face
    pinker = paste(f.astype(np.float32) * [1.12, 0.97, 0.88] + [8, 0, 0])
    strip = border_strip(f, pinker, marks)
    side = strip.shape[0] // 2
    assert strip.shape == (2 * side, 5 * side + 4 * 2, 3) and side >= 8
    x, y = (int(round(v)) - side // 2 for v in marks[8])            # the chin's square: third
    chin = slice(2 * (side + 2), 2 * (side + 2) + side)
    assert np.array_equal(strip[:side, chin], f[y:y + side, x:x + side])
    assert np.array_equal(strip[side:, chin], pinker[y:y + side, x:x + side])
    assert border_strip(f[:int(marks[8, 1])], pinker[:int(marks[8, 1])], marks) is None
    res = {"model": str(tmp_path), "preset": "hd", "step": 1, "faces_a": 0, "faces_b": 0,
           "source": "test", "_samples": {"a": []}, "_border": strip}
    images = write_html(res, tmp_path / "report.html")
    assert tmp_path / "report_files" / "border.png" in images
    assert "The face's border" in (tmp_path / "report.html").read_text()
    assert "trained 1 steps only" in (tmp_path / "report.html").read_text()     # too early to judge
    write_html(dict(res, step=200), tmp_path / "r200.html")                      # from 200 steps on: not said
    assert "steps only" not in (tmp_path / "r200.html").read_text()
    # what a model folder says reaches the report as text, never as markup
    write_html(dict(res, step="1<h1>x</h1>", preset="<b>hd"), tmp_path / "r2.html")
    text = (tmp_path / "r2.html").read_text()
    assert "<h1>x" not in text and "&lt;h1&gt;x" in text and "&lt;b&gt;hd" in text
    assert "steps only" not in text                    # a step that is not a number: no note
