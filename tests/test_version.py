"""The version is set in one place (facepair.__version__): pyproject.toml reads it, the installed
package reports it, `facepair --version` prints it and the HTML report of `evaluate` shows it."""
from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

from conftest import ROOT

import facepair


def test_the_version_is_set_once_and_read_everywhere(tmp_path):
    assert re.fullmatch(r"\d+\.\d+\.\d+", facepair.__version__)
    assert importlib.metadata.version("facepair") == facepair.__version__, "reinstall: make setup"
    if sys.version_info >= (3, 11):                    # tomllib: the rest runs on 3.10 too
        import tomllib
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "facepair.__version__"}

    r = subprocess.run([sys.executable, "-m", "facepair", "--version"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"facepair {facepair.__version__}"

    from facepair.evaluate import report
    res = {"model": str(tmp_path / "model"), "preset": "hd", "step": 1, "faces_a": 0, "faces_b": 0,
           "source": "held-out validation faces", "l1_a": 0.1, "l1_b": 0.2,
           "_samples": {k: [] for k in ("a", "rec_a", "a2b", "b", "rec_b", "b2a")}}
    report.write_html(res, tmp_path / "report.html")
    assert f"facepair {facepair.__version__}" in (tmp_path / "report.html").read_text()
