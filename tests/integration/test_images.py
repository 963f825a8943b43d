"""Both images build from their Dockerfiles as written: buildah with chroot isolation, on a
base made from Debian bookworm packages, as ``make test`` does on a machine with no registry.

A build that fails must fail the run and name the step: Debian's own ``operator`` group once
broke the operator image at ``groupadd``, which no lint could see.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.testbed import images
from tests.testbed.toolchain import BedError


def test_both_images_build_from_their_dockerfiles(tmp_path: Path) -> None:
    built = images.build_images(tmp_path)
    assert set(built) == set(images.IMAGES)
    for image in built.values():
        with tarfile.open(image.archive) as archive:
            manifest = json.load(archive.extractfile("manifest.json"))[0]
            config = json.load(archive.extractfile(manifest["Config"]))["config"]
        # Pods name the image without a registry: containerd resolves it to docker.io/library.
        assert f"docker.io/library/{image.reference}" in manifest["RepoTags"]
        assert config["User"] == "10001:10001"
        assert config["Entrypoint"] == [image.reference.split(":")[0]]


def test_a_failing_build_names_the_step(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nRUN groupadd --system --gid 10001 operator\n"
    )
    with (
        images.exclusive() as buildah,
        pytest.raises(BedError, match=r"failed at STEP 2/2: RUN groupadd .* operator"),
    ):
        images.build_on_base(buildah, dockerfile, tmp_path, "localhost/scalingdemo-check:dev")
