"""The release is what CI tested: build the sdist and wheel, check them, install the wheel, test it.

    python scripts/release_check.py            # from the project's .venv (bash scripts/setup.sh first)
    python scripts/release_check.py --keep     # keep the work folder (printed) to look at afterwards

1. ``python -m build`` makes the sdist and the wheel into a temp folder; ``twine check --strict`` reads
   their metadata (the README as the long description included).
2. A clean venv gets the **wheel** (not the source tree, not editable) with its ``sandbox`` extra, pinned by
   ``constraints/airflow-3.3.2.txt`` (the default line), plus pytest.
3. From a copy of ``tests/``, ``example_dags/`` and ``docs/snippets/`` in that temp folder (no
   ``airflow_provider_spp/`` beside them), ``airflow_provider_spp`` must import from the venv's
   site-packages; then the system DAG tests (all but the slow fault matrix) and the docs' snippet tests
   run against the installed wheel.
4. ``scripts/demo.py`` runs in that venv: the sandbox from the wheel's ``spp-sandbox`` entry point, the
   weekly follow-up DAG with ``airflow dags test``.

So a file the wheel lacks (``py.typed``, the sandbox's modules, an entry point) fails here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from constraints import DEFAULT_VERSION, uv

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / "constraints" / f"airflow-{DEFAULT_VERSION}.txt"
#: What the installed tests need besides the wheel (pinned by the same constraints file).
TEST_TOOLS = ("pytest", "pytest-timeout")
#: What must be in the wheel, whatever the tests happen to touch.
REQUIRED_IN_WHEEL = (
    "airflow_provider_spp/py.typed",
    "airflow_provider_spp/sandbox/pytest_plugin.py",
    "airflow_provider_spp/sandbox/cli.py",
    "airflow_provider_spp/_internal/provider_info.py",
)
#: Copied beside the tests: the checkout's DAGs and snippets, never the package.
COPIED = ("tests", "example_dags", "docs/snippets", "pyproject.toml")


def say(text: str) -> None:
    """A step heading."""
    print(f"==> {text}", flush=True)


def run(command: list[str], **kwargs: object) -> None:
    """Run a command with its output shown; exit with its code if it fails."""
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(result.returncode)


def build(dist: Path) -> Path:
    """sdist + wheel into ``dist``; twine check; return the wheel after checking its contents."""
    say("python -m build (sdist and wheel)")
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)])
    artifacts = sorted(dist.iterdir())
    say("twine check --strict " + " ".join(a.name for a in artifacts))
    run([sys.executable, "-m", "twine", "check", "--strict", *map(str, artifacts)])
    wheels = [a for a in artifacts if a.suffix == ".whl"]
    sdists = [a for a in artifacts if a.name.endswith(".tar.gz")]
    if len(wheels) != 1 or len(sdists) != 1:
        sys.exit(f"expected one wheel and one sdist, got {[a.name for a in artifacts]}")
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    missing = [name for name in REQUIRED_IN_WHEEL if name not in names]
    if missing:
        sys.exit(f"{wheels[0].name} lacks {', '.join(missing)}")
    return wheels[0]


def install(wheel: Path, venv: Path) -> Path:
    """A clean venv with the wheel (and its sandbox extra) pinned by the default line's constraints."""
    say(f"installing {wheel.name} into a clean venv ({venv})")
    run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    requirement = f"airflow-provider-spp[sandbox] @ {wheel.as_uri()}"
    run([uv(), "pip", "install", "--quiet", "--python", str(python), requirement, f"apache-airflow=={DEFAULT_VERSION}",
         *TEST_TOOLS, "-c", str(CONSTRAINTS)])  # fmt: skip
    return python


def copy_tests(work: Path) -> None:
    """The tests and what they read from the checkout, without the package's source."""
    for name in COPIED:
        source, target = REPO / name, work / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def assert_installed(python: Path, venv: Path, work: Path, env: dict[str, str]) -> None:
    """From the work folder, ``airflow_provider_spp`` must come from the venv, not from a checkout."""
    code = "import airflow_provider_spp as p, pathlib; print(pathlib.Path(p.__file__).resolve())"
    found = subprocess.run([str(python), "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True)
    location = Path(found.stdout.strip())
    print(f"airflow_provider_spp.__file__ = {location}", flush=True)
    if venv.resolve() not in location.parents:
        sys.exit(f"the tests would import {location}, not the installed wheel under {venv}")


def main(argv: list[str] | None = None) -> int:
    """Build, check, install and test the wheel; exit non-zero on the first failure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="spp-release-"))
    try:
        wheel = build(tmp / "dist")
        venv = tmp / "venv"
        python = install(wheel, venv)
        work = tmp / "work"
        copy_tests(work)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        assert_installed(python, venv, work, env)
        say("system DAG tests and the docs' snippet tests against the installed wheel")
        tests = ["tests/system", "tests/docs/test_snippets.py"]
        run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-m", "not slow", *tests], cwd=work, env=env)
        say("the demo against the installed wheel")
        run([str(python), str(REPO / "scripts" / "demo.py")], cwd=work, env={**env, "VENV": str(venv)})
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
