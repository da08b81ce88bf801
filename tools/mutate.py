"""Mutation check of the pure modules (`make mutate`; not part of `make test`).

For each module below, mutmut (the `mutate` extra) changes the code one small edit at a time
(an operator, a constant, a comparison, an argument dropped) and runs only that module's fast
unit tests against each change; a change the tests notice is "killed", one they do not is a
"survivor". Each module runs in its own copy under build/mutate/<name>/ (mutmut writes its
mutated tree there, never in src/), one module at a time, at low priority, and prints

    module: killed/total (pct)

Usage: python tools/mutate.py [--jobs N] [--show-survivors] [MODULE-NAME ...]
(names as in MODULES: metrics, watermark, verify, label, compose, smooth, align, options,
swap_options, train_options). docs/testing.md lists the survivors judged equivalent.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPAIR_SAMPLES", ROOT.parent / "shared" / "data")).resolve()

# name: (module file under src/facepair, mutant name patterns, the fast tests that judge it)
MODULES = {
    # evaluate's composite figures (composite, composite_regions, _lab; issue 30) are judged by
    # tests/test_composite.py on real photos, 7 s a run: not in this check yet
    "metrics": ("evaluate/metrics.py", "facepair.evaluate.metrics.x_[!c_]* facepair.evaluate.metrics.x__corr*",
                ["tests/test_units_metrics.py"]),
    "watermark": ("provenance/watermark.py", "facepair.provenance.watermark.*", ["tests/test_units_provenance.py"]),
    "verify": ("provenance/verify.py", "facepair.provenance.verify.*", ["tests/test_units_provenance.py"]),
    "label": ("provenance/label.py", "facepair.provenance.label.*", ["tests/test_units_provenance.py"]),
    "compose": ("swap/compose.py", "facepair.swap.compose.*", ["tests/test_units_swap.py"]),
    "smooth": ("swap/smooth.py", "facepair.swap.smooth.*", ["tests/test_units_swap.py"]),
    "align": ("faces/align.py", "facepair.faces.align.*", ["tests/test_units_faces.py"]),
    # the option parsers: the flags' bounds (cli._number) and train's result line; the defaults
    # in faces/options.py and swap/options.py are module and class constants, which mutmut does
    # not mutate (tests/test_units_options.py pins them to the README instead)
    "options": ("cli.py", "facepair.cli.x__number*", ["tests/test_units_options.py"]),
    "train_options": ("training/options.py", "facepair.training.options.*", ["tests/test_units_options.py"]),
}


def _prepare(name: str) -> Path:
    module, _, tests = MODULES[name]
    work = ROOT / "build" / "mutate" / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "tests").mkdir(parents=True)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for f in ["tests/conftest.py", *tests]:
        shutil.copy2(ROOT / f, work / f)
    listed = lambda xs: "".join(f"\n    {x}" for x in xs)
    (work / "setup.cfg").write_text(
        "[mutmut]\nsource_paths = src\n"
        f"only_mutate = src/facepair/{module}\n"
        f"pytest_add_cli_args_test_selection ={listed(tests)}\n"
        "pytest_add_cli_args =\n    -q\n    -p\n    no:cacheprovider\n    -p\n    no:xdist\n"
        "use_git_change_detection = false\n")
    return work


def run(name: str, jobs: int, show: bool) -> tuple[int, int]:
    _, pattern, _ = MODULES[name]
    work = _prepare(name)
    env = dict(os.environ, FACEPAIR_SAMPLES=str(DATA), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    mutmut = [sys.executable, "-m", "mutmut"]
    log = work / "mutmut.log"
    with open(log, "w") as out:
        subprocess.run(["nice", "-n", "10", *mutmut, "run", "--max-children", str(jobs), *pattern.split()],
                       cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    if "failed to collect stats" in log.read_text(errors="replace"):
        print(f"{name} ({MODULES[name][0]}): its tests fail on the unmutated code; no score "
              f"(see {log.relative_to(ROOT)})", flush=True)
        return 0, 0
    r = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env,
                       capture_output=True, text=True)
    status = dict(re.findall(r"^\s+(\S+): (.+)$", r.stdout, re.M))
    mine = {k: v for k, v in status.items() if any(fnmatch.fnmatchcase(k, p) for p in pattern.split())}
    killed = sum(v in ("killed", "timeout") for v in mine.values())
    total = len(mine)
    pct = f"{100 * killed / total:.0f} %" if total else "no mutants"
    print(f"{name} ({MODULES[name][0]}): {killed}/{total} ({pct})", flush=True)
    if total == 0:
        print(f"    (no result: see {log.relative_to(ROOT)})")
    if show:
        for k, v in sorted(mine.items()):
            if v not in ("killed", "timeout"):
                print(f"    {k}: {v}")
    return killed, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="MODULE-NAME", help=f"some of: {', '.join(MODULES)} (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="mutants checked at once (default 2)")
    ap.add_argument("--show-survivors", action="store_true", help="list each survivor's name "
                    "(`cd build/mutate/NAME && mutmut show NAME` prints its diff)")
    a = ap.parse_args()
    unknown = set(a.names) - set(MODULES)
    if unknown:
        ap.error(f"unknown module name(s): {', '.join(sorted(unknown))}")
    for name in a.names or MODULES:
        run(name, a.jobs, a.show_survivors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
