"""CI's docs step: the docs tools from the constraints file, Debian's Chromium, then tests/docs' site checks.

    python3 scripts/docs_site.py      # from a checkout; sets up .venv first (scripts/setup.sh)

Installs the ``docs`` extra into ``.venv`` pinned by ``constraints/airflow-3.3.2.txt``, installs Debian's
``chromium`` with apt-get when it is missing (as root, or with password-less sudo; never a downloaded
browser), then runs ``tests/docs/test_site.py`` (``mkdocs build --strict``, pages opened in Chromium) and
``tests/docs/test_pages.py`` (includes, markers, the versions table) with ``SPP_DOCS_SITE=1``. If
Chromium cannot be installed, the browser tests skip and say why; the strict build still runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """apt-get install chromium when /usr/bin/chromium is missing (the E2E step's way: root or sudo -n)."""
    if CHROMIUM.exists():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        print("==> chromium is missing and this user cannot apt-get install it: the browser tests will skip")
        return
    print("==> Installing Debian's chromium (apt-get update first)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        result = subprocess.run([*sudo, *command], env=env, check=False)
        if result.returncode != 0:
            print(f"==> `{' '.join(command)}` failed ({result.returncode}): the browser tests will skip")
            return


def main() -> int:
    """Set up, then run the site's tests; their exit code is the step's."""
    subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], check=True)
    subprocess.run(
        [str(VENV / "bin" / "uv"), "pip", "install", "--quiet", "--python", str(VENV / "bin" / "python"),
         "-e", ".[dev,docs]", "apache-airflow==3.3.2", "-c", "constraints/airflow-3.3.2.txt"],
        cwd=REPO,
        check=True,
    )  # fmt: skip
    ensure_chromium()
    tests = ["tests/docs/test_site.py", "tests/docs/test_pages.py"]
    command = [str(VENV / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=REPO, env={**os.environ, "SPP_DOCS_SITE": "1"}, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
