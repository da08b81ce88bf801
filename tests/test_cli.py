"""The package's shape as users meet it: light commands load no heavy library, imports go one way."""
import subprocess
import sys

from conftest import OBAMA_PHOTOS, ROOT, run_cli

HEAVY = ("torch", "dlib", "skimage")


def _loaded_after(*argv) -> list[str]:
    code = ("import sys\nfrom facepair.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('LOADED:', *(m for m in %r if m in sys.modules))" % (list(argv), HEAVY))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1].split()[1:]


def test_version_verify_and_help_load_no_torch_dlib_or_scikit_image():
    assert _loaded_after("--version") == []
    assert _loaded_after("verify", str(OBAMA_PHOTOS / "obama.jpg")) == []
    for command in ("extract", "train", "swap", "evaluate", "verify", "demo"):
        assert _loaded_after(command, "--help") == [], command
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("facepair ")


def test_imports_go_one_way():
    """No module imports one above it, not even inside a function (the team's checker)."""
    checker = ROOT.parent / "shared" / "hooks" / "importcycles.py"
    r = subprocess.run([sys.executable, str(checker), str(ROOT / "src"), "facepair"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert "0 import cycles" in r.stdout
