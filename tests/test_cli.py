"""The package's shape as users meet it: light commands load no heavy library, imports go one way."""
import subprocess
import sys

import pytest

from conftest import OBAMA_PHOTOS, ROOT, run_cli

HEAVY = ("torch", "dlib", "skimage")


COMMANDS = ("extract", "train", "swap", "evaluate", "verify", "export", "demo", "ui")


def test_the_command_list_is_every_command():
    """The tests below go over COMMANDS: it must name every command the parser has."""
    from facepair.cli import build_parser
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)


def _loaded_after(*argv, code=0) -> list[str]:
    """The heavy modules loaded by `facepair ARGV` run in a fresh interpreter, which must end
    with exit code `code` (main's return value, or argparse's SystemExit for --help)."""
    prog = ("import sys\nfrom facepair.cli import main\ntry:\n    rc = main(%r)\n"
            "except SystemExit as e:\n    rc = e.code\n"
            "print('EXIT:', rc or 0, 'LOADED:', *(m for m in %r if m in sys.modules))" % (list(argv), HEAVY))
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1].split()
    assert last[:2] == ["EXIT:", str(code)], (argv, r.stdout[-2000:], r.stderr[-2000:])
    return last[3:]


def test_version_verify_and_help_load_no_torch_dlib_or_scikit_image(tmp_path):
    """README: `--version`, `verify` and every `--help` (the web app's `ui --help` too) load no
    torch, dlib or scikit-image, and still do their work: verify gives its verdict."""
    import numpy as np
    from facepair.provenance import label
    marked = tmp_path / "marked.png"
    rng = np.random.default_rng(0)
    label.write_image(marked, np.clip(rng.normal(128, 30, (360, 480, 1)).repeat(3, 2), 0, 255).astype(np.uint8))
    assert _loaded_after("--version") == []
    assert _loaded_after("verify", str(marked)) == []                                  # ours: 0
    assert _loaded_after("verify", str(OBAMA_PHOTOS / "obama.jpg"), code=1) == []     # an original: 1
    for command in COMMANDS:
        assert _loaded_after(command, "--help") == [], command
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("facepair ")


def test_every_command_has_help_describing_its_options():
    """Every command's --help exits 0 and prints its usage line, each of its options and what
    each one does (argparse lists an option without its description too: the text is checked)."""
    from facepair.cli import build_parser
    for command in COMMANDS:
        r = run_cli(command, "--help")
        assert r.returncode == 0 and r.stderr == "", (command, r.stderr)
        assert r.stdout.startswith(f"usage: facepair {command} "), r.stdout[:200]
        assert "-h, --help" in r.stdout
        shown = " ".join(r.stdout.split())                  # as printed, lines joined
        sub = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in r.stdout, (command, flag)
            if action.option_strings or action.help:
                assert action.help and action.help.strip(), (command, action.dest, "no description")
                start = " ".join(action.help.split("%")[0].split()[:4])   # before any %(default)s
                assert start in shown, (command, action.dest, start)
    r = run_cli("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in COMMANDS)


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`facepair verify ... | head -1`: once stdout's reader has gone, the command stops with
    141 (128 + SIGPIPE, as a Unix tool) and no "internal error" line (it was one before)."""
    files = [str(OBAMA_PHOTOS / "obama.jpg"), str(OBAMA_PHOTOS / "obama2.jpg")]
    p = subprocess.Popen([sys.executable, "-m", "facepair", "verify", *files], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                    # the reader goes before the first line is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err


def test_asking_for_a_gpu_without_one_is_one_line_and_writes_nothing(tmp_path):
    """README's troubleshooting row: `--device cuda` on a machine without CUDA."""
    import pytest
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    r = run_cli("swap", OBAMA_PHOTOS / "obama.jpg", "--model", tmp_path / "m", "-o", tmp_path / "o.png",
                "--device", "cuda")
    assert r.returncode == 1 and r.stderr.splitlines() == [
        "facepair: error: --device cuda: no CUDA GPU is available"], r.stderr
    assert list(tmp_path.iterdir()) == []


def test_files_declaring_huge_pictures_are_refused_before_decoding(tmp_path):
    """A small file can declare a huge picture (a decompression bomb): a 0.1 MB PNG of 144
    megapixels, a 40 KB video of 100-megapixel frames. `verify` refuses each in one line,
    quickly, without decoding it (a 20,000 x 720 px one took 0.5 GB before)."""
    import time
    import av
    import numpy as np
    from PIL import Image
    png, mkv = tmp_path / "wide.png", tmp_path / "wide.mkv"
    Image.new("L", (200_000, 720)).save(png)
    with av.open(str(mkv), "w") as c:
        s = c.add_stream("ffv1", rate=1)
        s.width, s.height, s.pix_fmt = 100_000, 1000, "gray"
        for p in [*s.encode(av.VideoFrame.from_ndarray(np.zeros((1000, 100_000), np.uint8), format="gray")),
                  *s.encode()]:
            c.mux(p)
    assert png.stat().st_size < 200_000 and mkv.stat().st_size < 100_000
    for f, says in ((png, "declares 200000 x 720 pixels"), (mkv, "has 100000 x 1000 pixels")):
        t = time.monotonic()
        r = run_cli("verify", f)
        line, = r.stderr.strip().splitlines()       # one line, on stderr (it was a line on stdout)
        assert r.returncode == 1 and r.stdout == "" and line.startswith("facepair: error: ") \
            and "too large to read: " in line and says in line, r
        assert time.monotonic() - t < 30 and "Traceback" not in r.stderr
    from facepair.errors import TooLarge
    from facepair.media.image import read_image
    Image.new("L", (300_000, 720)).save(png)        # past what Pillow will even size: no w x h
    with pytest.raises(TooLarge) as e:
        read_image(png)
    assert str(e.value) == f"picture too large to read: {png} declares more than 89 megapixels"



def test_a_picture_cut_short_is_one_line_in_every_format(trained_model, tmp_path):
    """A photo whose download broke off (every format facepair reads, cut at 60 %): `verify`,
    `swap` and `extract` each say in one line that they cannot read it, exit 1 and write
    nothing. libpng, OpenCV's log and Pillow's EXIF reader printed lines of their own before
    ("libpng error: PNG input buffer is incomplete", "[ERROR:0@0.3] global loadsave.cpp ...",
    "Corrupt EXIF data ...")."""
    import cv2
    photo = cv2.imread(str(OBAMA_PHOTOS / "obama.jpg"))
    for ext in ("png", "jpg", "webp", "tif", "bmp"):
        whole = cv2.imencode(f".{ext}", photo)[1].tobytes()
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(whole[:len(whole) * 6 // 10])
        for args in (["verify", cut], ["swap", cut, "--model", trained_model, "-o", tmp_path / f"out.{ext}"],
                     ["extract", cut, "-o", tmp_path / "faces", "--quiet"]):
            r = run_cli(*args)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 1 and len(lines) == 1 and "cannot" in lines[0] and str(cut) in lines[0], \
                (ext, args[0], r.stderr)
            assert args[0] != "verify" or r.stdout == "", r.stdout
        assert not (tmp_path / f"out.{ext}").exists() and not (tmp_path / "faces").exists()

def test_imports_go_one_way():
    """No module imports one above it, not even inside a function (the team's checker)."""
    checker = ROOT.parent / "shared" / "hooks" / "importcycles.py"
    r = subprocess.run([sys.executable, str(checker), str(ROOT / "src"), "facepair"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert "0 import cycles" in r.stdout


def test_a_bug_is_one_line_with_exit_3_and_a_traceback_only_when_asked(monkeypatch, capsys):
    """An unexpected exception (a bug, not the user's doing) is one line naming it and exit 3;
    FACEPAIR_DEBUG=1 shows the traceback instead."""
    import facepair.api
    from facepair import cli

    def broken(*args, **kwargs):
        raise RuntimeError("the reader broke")
    monkeypatch.setattr(facepair.api, "verify", broken)
    monkeypatch.delenv("FACEPAIR_DEBUG", raising=False)
    assert cli.main(["verify", str(OBAMA_PHOTOS / "obama.jpg")]) == cli.EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("facepair: internal error: RuntimeError: the reader broke") and "FACEPAIR_DEBUG=1" in err
    monkeypatch.setenv("FACEPAIR_DEBUG", "1")
    with pytest.raises(RuntimeError, match="the reader broke"):
        cli.main(["verify", str(OBAMA_PHOTOS / "obama.jpg")])
