"""Keep README.md's code and tables copies of tested files: every ``<!-- include: path[:section] -->`` region.

README.md cannot run the docs site's include hook (GitHub and PyPI show it as it is), so it carries the
included text itself, between an opening comment and ``<!-- end include -->``:

    <!-- include: example_dags/spp_order_followup.py:howto_operator_spp_create_order_message -->
    ```python
    ...written by this script...
    ```
    <!-- end include -->

``path:section`` takes the lines between ``# [START section]`` and ``# [END section]`` (as the docs do,
through docs/hooks/include.py) in a fenced block; a whole ``.md`` file (the generated versions table) is
copied as it is. ``tests/docs/test_pages.py`` fails when README.md differs from what this writes.

    python scripts/sync_readme.py            # rewrite the regions
    python scripts/sync_readme.py --check    # exit 1 if a region is stale
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
REGION = re.compile(
    r"^<!-- include: (?P<path>[^\s:]+)(?::(?P<name>[A-Za-z0-9_.-]+))? -->\n(?P<body>.*?)^<!-- end include -->$",
    re.MULTILINE | re.DOTALL,
)
FENCES = {".py": "python", ".sh": "bash", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml"}


def _include_hook():  # type: ignore[no-untyped-def]
    """docs/hooks/include.py: the same section reader the docs site uses."""
    spec = importlib.util.spec_from_file_location("spp_docs_include", REPO / "docs" / "hooks" / "include.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synced(text: str) -> str:
    """README text with every include region rewritten from its source."""
    hook = _include_hook()

    def body(match: re.Match[str]) -> str:
        path, name = match["path"], match["name"]
        content = hook.section(path, name)
        if name is not None or Path(path).suffix != ".md":
            content = f"```{FENCES.get(Path(path).suffix, '')}\n{content}\n```"
        head = f"<!-- include: {path}{':' + name if name else ''} -->"
        return f"{head}\n{content.rstrip()}\n<!-- end include -->"

    return REGION.sub(body, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md's include regions, or with ``--check`` report whether they are current."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    current = README.read_text()
    wanted = synced(current)
    if args.check:
        if wanted != current:
            print("README.md's include regions are stale: run `python scripts/sync_readme.py`")
            return 1
        print(f"README.md: {len(REGION.findall(current))} include regions, all current")
        return 0
    README.write_text(wanted)
    print(f"README.md: {len(REGION.findall(wanted))} include regions written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
