"""The openai SDK's own tests as a peer suite for closedloop's promise never to break a call.

The SDK's ``tests/lib/chat`` and ``tests/lib/responses`` exercise exactly the methods
closedloop wraps (``create``, its streams, and the ``parse``/``stream`` helpers built on it).
This script runs them twice against the installed ``openai``: plain, and with closedloop
instrumented by a pytest plugin (``sdk_suite_closedloop``). It lists every test that passes
plain but not instrumented and exits 1 when there is one. Tests that fail in both runs
(e.g. a mock server that is not running here, or snapshot files the sdist does not ship)
say nothing about closedloop: only the difference counts.

Everything is cached under ``.build/sdk-suite/`` (the sdist of the installed version, its
extracted tests, and a test venv), so only the first run needs the package index. The test
venv is layered on the project's venv (a ``.pth`` adds its site-packages): the SDK and
closedloop under test are the very ones installed there, while the SDK's test dependencies
go into the layer and the project's venv stays untouched.

Usage: ``make sdk-suite`` or ``.venv/bin/python scripts/sdk_suite/run.py [--jobs N] [PATH ...]``.
A ``PYTHONPATH`` given to it reaches both runs, e.g. to test another closedloop source:
``git archive HEAD src | tar -x -C /tmp/head && PYTHONPATH=/tmp/head/src make sdk-suite``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip's vendored copy of the same parser
    from pip._vendor import tomli as tomllib

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
CACHE = PROJECT / ".build" / "sdk-suite"
DEFAULT_PATHS = ("tests/lib/chat", "tests/lib/responses")
# What the SDK's tests under DEFAULT_PATHS import, by name in the sdist's pyproject.toml:
# its "dev" dependency group, and the extras whose code paths they test.
DEV_PACKAGES = ("pytest", "pytest-asyncio", "pytest-xdist", "inline-snapshot", "rich")
EXTRAS = ("realtime", "aiohttp")
# Variables that would change what the SDK's tests or closedloop do (a live API key, an
# OTLP endpoint, the developer's closedloop settings, extra pytest options).
SCRUBBED_ENV_PREFIXES = ("OPENAI_", "OTEL_", "CLOSEDLOOP_", "PYTEST_")
REASON_WIDTH = 160


class SuiteError(Exception):
    """The harness could not run the suite (as opposed to a test regression)."""


def timed(label: str, timings: dict[str, float], start: float) -> None:
    timings[label] = time.monotonic() - start
    print(f"[sdk-suite] {label}: {timings[label]:.1f}s", flush=True)


def ensure_sdist(openai_version: str) -> Path:
    """The sdist of the installed version: the tests that match the code under test."""
    dist = CACHE / "dist"
    found = sorted(dist.glob(f"openai-{openai_version}.tar.gz"))
    if found:
        return found[0]
    dist.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
    subprocess.run([*pip, ":all:", f"openai=={openai_version}", "--dest", str(dist)], check=True)
    found = sorted(dist.glob(f"openai-{openai_version}.tar.gz"))
    if not found:
        raise SuiteError(f"pip download left no openai-{openai_version}.tar.gz in {dist}")
    return found[0]


def ensure_tree(sdist: Path, openai_version: str) -> Path:
    """``tests/`` and ``pyproject.toml`` (pytest's settings) of the sdist; not ``src/``:
    the tests must import the installed openai, not the sdist's copy."""
    tree = CACHE / f"openai-{openai_version}"
    if (tree / "pyproject.toml").is_file():
        return tree
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    prefix = f"openai-{openai_version}/"
    with tarfile.open(sdist) as archive:
        wanted = []
        for member in archive.getmembers():
            inner = member.name.removeprefix(prefix)
            if inner == "pyproject.toml" or inner.startswith("tests/"):
                member.name = inner
                wanted.append(member)
        archive.extractall(partial, members=wanted, filter="data")
    partial.rename(tree)  # only a complete extraction is ever reused
    return tree


def test_requirements(tree: Path) -> list[str]:
    """The SDK's own version ranges for what its tests need, read from its pyproject."""
    project = tomllib.loads((tree / "pyproject.toml").read_text())
    wanted = set(DEV_PACKAGES)
    requirements = [
        spec
        for spec in project["dependency-groups"]["dev"]
        if re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower() in wanted
    ]
    for extra in EXTRAS:
        requirements += project["project"]["optional-dependencies"][extra]
    return sorted(requirements)


def ensure_venv(requirements: list[str]) -> Path:
    """A venv layered on the running (project) venv, plus the SDK's test dependencies.

    Rebuilt when the requirements, the Python or the project venv change (a stamp holds
    them); otherwise reused as is.
    """
    if sys.prefix == sys.base_prefix:
        raise SuiteError("run this with the project venv's python (make sdk-suite)")
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    layers = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    key = json.dumps({"python": sys.version, "layers": layers, "requirements": requirements})
    stamp = venv / ".installed"
    if stamp.is_file() and stamp.read_text() == key and python.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir (not a bare path) so the project venv's own .pth files run too: they put
    # closedloop's editable source on sys.path.
    Path(site, "_project_venv.pth").write_text(
        "".join(f"import site; site.addsitedir({layer!r})\n" for layer in layers)
    )
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements], check=True)
    stamp.write_text(key)
    return python


def run_pytest(
    python: Path, tree: Path, paths: list[str], jobs: str, *, instrumented: bool
) -> tuple[dict[str, dict[str, str]], Path]:
    """One run; returns the outcomes by node id and the directory of its files."""
    name = "instrumented" if instrumented else "plain"
    results = CACHE / "results" / name
    shutil.rmtree(results, ignore_errors=True)
    (results / "spans").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        CLOSEDLOOP_HOME=str(CACHE / "closedloop-home"),
        SDK_SUITE_OUTCOMES=str(results / "outcomes.json"),
        SDK_SUITE_SPANS_DIR=str(results / "spans"),
    )
    plugins = ["-p", "sdk_suite_outcomes"]
    if instrumented:
        plugins += ["-p", "sdk_suite_closedloop"]
    # The SDK's addopts ask for -n auto and --durations; the rest of its pytest settings
    # (asyncio mode, warnings as errors, strict xfail) apply unchanged.
    command = [str(python), "-m", "pytest", *paths, *plugins, "-o", "addopts="]
    command += ["-p", "no:cacheprovider", "--tb=short", "-q", "-n", jobs]
    log = results / "pytest.log"
    with log.open("w") as out:
        # Failing tests are expected in both runs: the outcomes file says which.
        subprocess.run(
            command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    summary = log.read_text().rstrip().rsplit("\n", 1)[-1]
    print(f"[sdk-suite] {name}: {summary}  (log: {log.relative_to(PROJECT)})", flush=True)
    outcomes_file = results / "outcomes.json"
    if not outcomes_file.is_file():
        raise SuiteError(f"the {name} run wrote no outcomes; see {log}")
    return json.loads(outcomes_file.read_text()), results


def span_summary(results: Path) -> dict[str, object]:
    """Spans and closedloop.stats() over all pytest processes of the instrumented run."""
    spans = 0
    by_name: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    sources: set[str] = set()
    for file in sorted((results / "spans").glob("*.json")):
        one = json.loads(file.read_text())
        spans += one["spans"]
        by_name.update(one["by_name"])
        failures.update(one["stats"]["failures_by_site"])
        sources.add(one["closedloop"])
    return {
        "spans": spans,
        "by_name": dict(by_name),
        "internal_failures": dict(failures),
        "closedloop": sorted(sources),
    }


def totals(outcomes: dict[str, dict[str, str]]) -> str:
    counts = Counter(record["outcome"] for record in outcomes.values())
    return ", ".join(f"{counts[k]} {k}" for k in sorted(counts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS))
    parser.add_argument("--jobs", default="auto", help="pytest-xdist's -n (0: no xdist)")
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    openai_version = version("openai")
    print(f"[sdk-suite] openai {openai_version}, tests: {' '.join(args.paths)}", flush=True)

    start = time.monotonic()
    tree = ensure_tree(ensure_sdist(openai_version), openai_version)
    timed("sdist", timings, start)
    start = time.monotonic()
    python = ensure_venv(test_requirements(tree))
    timed("test venv", timings, start)

    start = time.monotonic()
    plain, _ = run_pytest(python, tree, args.paths, args.jobs, instrumented=False)
    timed("plain run", timings, start)
    start = time.monotonic()
    traced, traced_dir = run_pytest(python, tree, args.paths, args.jobs, instrumented=True)
    timed("instrumented run", timings, start)

    print(f"[sdk-suite] plain:        {totals(plain)}")
    print(f"[sdk-suite] instrumented: {totals(traced)}")
    spans = span_summary(traced_dir)
    print(f"[sdk-suite] closedloop under test: {' '.join(spans['closedloop'])}")
    print(f"[sdk-suite] closedloop spans exported: {spans['spans']} {spans['by_name']}")
    if spans["internal_failures"]:
        # Not a broken call (closedloop swallows them), but a part of it did not run.
        print(f"[sdk-suite] WARNING closedloop internal failures: {spans['internal_failures']}")
    if not any(r["outcome"] == "passed" for r in plain.values()):
        raise SuiteError("no test passed plain: the comparison is void")
    if not spans["spans"]:
        raise SuiteError("closedloop exported no span: the instrumented run was not instrumented")

    missing = {"outcome": "missing", "reason": "not run instrumented", "details": ""}
    broken = {
        nodeid: traced.get(nodeid, missing)
        for nodeid, record in sorted(plain.items())
        if record["outcome"] == "passed" and traced.get(nodeid, missing)["outcome"] != "passed"
    }
    fixed = [n for n, r in traced.items() if r["outcome"] == "passed" and n in plain]
    fixed = [n for n in fixed if plain[n]["outcome"] != "passed"]
    if fixed:
        print(f"[sdk-suite] {len(fixed)} test(s) pass only instrumented (flaky?): {fixed}")
    report = traced_dir / "regressions.json"
    report.write_text(json.dumps(broken, indent=1))
    if not broken:
        print("[sdk-suite] OK: every test that passes plain passes instrumented")
        return 0
    print(f"[sdk-suite] {len(broken)} test(s) pass plain but not instrumented:")
    for nodeid, record in broken.items():
        print(f"  {nodeid}\n    {record['outcome']}: {record['reason'][:REASON_WIDTH]}")
    print(f"[sdk-suite] tracebacks: {report.relative_to(PROJECT)}")
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (SuiteError, subprocess.CalledProcessError) as error:
        print(f"[sdk-suite] ERROR: {error}", file=sys.stderr)
        sys.exit(2)
