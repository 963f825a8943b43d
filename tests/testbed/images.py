"""Container images from the project's Dockerfiles, built without a daemon or a registry.

No container registry is reachable from CI, so the Dockerfiles' ``PYTHON_IMAGE`` base is made
from Debian packages (mmdebstrap) and imported ``FROM scratch``; buildah then builds both
Dockerfiles as written, with chroot isolation. The pause image a pod sandbox needs is compiled
from the Kubernetes module's own ``pause.c``. Results leave buildah as docker archives that
containerd imports.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import namespaces, versions
from .assets import cached, go_module
from .toolchain import BedError, cache_root, require, run, say

REPOSITORY = Path(__file__).resolve().parents[2]
TAG = "dev"
ARCHIVES = REPOSITORY / ".testbed" / "images"
"""Per checkout: the images are built from this working tree, not from a version."""
IMAGES = {
    "scalingdemo-workload": REPOSITORY / "Dockerfile.workload",
    "scalingdemo-operator": REPOSITORY / "Dockerfile.operator",
}
# Where the build finds the machine's trust settings; see ``_build_time_mounts``.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE_PIP_CONFIG = "/etc/pip.conf"
PIP_CONFIGS = (
    Path("/etc/pip.conf"),
    Path("/etc/xdg/pip/pip.conf"),
    Path.home() / ".config" / "pip" / "pip.conf",
    Path.home() / ".pip" / "pip.conf",
)
BASE_CONTAINERFILE = 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["python3"]\n'
PAUSE_CONTAINERFILE = 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'
# The flags of build/pause/Makefile's CFLAGS, without its VERSION (set from the release here).
PAUSE_CFLAGS = ("-Os", "-Wall", "-Werror", "-static")
STEP = re.compile(r"STEP \d+/\d+: .*")


@dataclass(frozen=True)
class Built:
    """An image as containerd gets it: a docker archive and the reference pods use."""

    reference: str
    archive: Path


def failed_step(log: str) -> str:
    """The last build step buildah announced in ``log``: the one that failed."""
    steps = STEP.findall(log)
    return steps[-1] if steps else "before the first step"


class Buildah:
    """buildah with its storage in the cache, in a private mount namespace.

    Even with its own storage configuration buildah writes ``/var/lib/containers/cache``,
    ``/run/containers`` and a CNI lock under ``/etc/cni``: the namespace redirects the first
    two into the cache, and the containers.conf written here moves the third.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _env(self) -> dict[str, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        storage = self.root / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'runroot = "{self.root / "run"}"\n'
            f'graphroot = "{self.root / "storage"}"\n'
        )
        containers = self.root / "containers.conf"
        containers.write_text(f'[network]\nnetwork_config_dir = "{self.root / "cni"}"\n')
        return dict(os.environ) | {
            "CONTAINERS_STORAGE_CONF": str(storage),
            "CONTAINERS_CONF": str(containers),
        }

    def _argv(self, args: list[str | Path]) -> list[str]:
        binds = namespaces.host_paths_under(self.root / "host")
        del binds[self.root / "host" / "var-log"]
        return namespaces.private(binds, [require("buildah", "build images"), *args])

    def run(self, args: list[str | Path], log: Path, what: str) -> None:
        run(self._argv(args), env=self._env(), log=log, what=what)

    def build(self, dockerfile: Path, context: Path, tag: str, log: Path, *extra: str) -> None:
        """``buildah bud`` with chroot isolation; a failure names the step that failed."""
        what = f"building {tag} from {dockerfile.name}"
        args: list[str | Path] = ["bud", "--isolation", "chroot", "--layers", "--pull=never"]
        try:
            self.run([*args, *extra, "--file", dockerfile, "--tag", tag, context], log, what)
        except BedError as error:
            step = failed_step(log.read_text(errors="replace"))
            raise BedError(f"{what} failed at {step}\n{error}") from None

    def has_image(self, reference: str) -> bool:
        inspect = self._argv(["inspect", "--type", "image", reference])
        return subprocess.run(inspect, env=self._env(), capture_output=True).returncode == 0

    def export(self, reference: str, name: str, archive: Path, log: Path) -> Built:
        """Write ``reference`` as a docker archive whose image is called ``name``."""
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.unlink(missing_ok=True)
        self.run(["push", reference, f"docker-archive:{archive}:{name}"], log, f"exporting {name}")
        return Built(name, archive)


@contextmanager
def exclusive() -> Iterator[Buildah]:
    """One build at a time on the shared storage: tags like ``:dev`` are per machine."""
    root = cache_root() / "buildah"
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / "buildah.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Buildah(root)


def base_key() -> str:
    """The base's cache key: the suite and the exact package list."""
    digest = hashlib.sha256(" ".join(versions.BASE_PACKAGES).encode()).hexdigest()[:10]
    return f"{versions.DEBIAN_SUITE}-{digest}"


def _debootstrap(out: Path, logs: Path) -> None:
    require("mmdebstrap", "make the images' Debian base")
    say(f"making the Debian {versions.DEBIAN_SUITE} rootfs of the images' base")
    run(
        namespaces.private(
            {},
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(versions.BASE_PACKAGES)}",
                versions.DEBIAN_SUITE,
                out / "rootfs.tar",
            ],
        ),
        log=logs / f"debian-base-{base_key()}.log",
        what=f"mmdebstrap {versions.DEBIAN_SUITE}",
    )
    (out / "Containerfile").write_text(BASE_CONTAINERFILE)


def _base_image(buildah: Buildah) -> str:
    """The ``PYTHON_IMAGE`` the Dockerfiles build on, imported once per base version."""
    rootfs = cached(cache_root() / f"debian-base-{base_key()}", _debootstrap)
    reference = f"localhost/scalingdemo-base:{base_key()}"
    if not buildah.has_image(reference):
        logs = cache_root() / "logs"
        buildah.build(rootfs / "Containerfile", rootfs, reference, logs / "base-import.log")
    return reference


def _build_time_mounts() -> list[str]:
    """The machine's CA bundle and pip config, visible to RUN steps only.

    pip inside the build must reach PyPI the way this machine does (a proxy's CA, an index
    setting). Build-time volumes are never written into a layer, so the images stay what
    the Dockerfiles say.
    """
    ca_bundle = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().openssl_cafile
    mounts = [(Path(ca_bundle), IMAGE_CA_BUNDLE)]
    pip_config = os.environ.get("PIP_CONFIG_FILE")
    candidates = [Path(pip_config)] if pip_config else list(PIP_CONFIGS)
    mounts += [(path, IMAGE_PIP_CONFIG) for path in candidates if path.is_file()][:1]
    return [f"--volume={source}:{target}:ro" for source, target in mounts if source.is_file()]


def build_on_base(buildah: Buildah, dockerfile: Path, context: Path, tag: str) -> None:
    """Build ``dockerfile`` with the Debian base as its ``PYTHON_IMAGE``."""
    buildah.build(
        dockerfile,
        context,
        tag,
        cache_root() / "logs" / f"{tag.rsplit('/', 1)[-1].replace(':', '-')}-build.log",
        f"--build-arg=PYTHON_IMAGE={_base_image(buildah)}",
        *_build_time_mounts(),
    )


def build_images(out: Path) -> dict[str, Built]:
    """Build both images from their Dockerfiles, unmodified, and export them into ``out``."""
    built = {}
    with exclusive() as buildah:
        for name, dockerfile in IMAGES.items():
            local = f"localhost/{name}:{TAG}"
            build_on_base(buildah, dockerfile, REPOSITORY, local)
            built[name] = buildah.export(
                local,
                f"{name}:{TAG}",
                out / f"{name}.tar",
                cache_root() / "logs" / f"{name}-export.log",
            )
    return built


def pause_tag(makefile: str) -> str:
    """The pause image's version, as the Kubernetes release's build/pause/Makefile sets it."""
    match = re.search(r"^TAG \?= (\S+)$", makefile, re.MULTILINE)
    if match is None:
        raise BedError("no 'TAG ?=' line in k8s.io/kubernetes build/pause/Makefile")
    return match.group(1)


def _pause_source() -> Path:
    return Path(go_module("k8s.io/kubernetes", versions.KUBERNETES)["Dir"]) / "build" / "pause"


def pause_reference() -> str:
    return f"localhost/pause:{pause_tag((_pause_source() / 'Makefile').read_text())}"


def _build_pause(out: Path, logs: Path) -> None:
    source = _pause_source()
    reference = pause_reference()
    version = f"v{reference.rsplit(':', 1)[1]}-{versions.KUBERNETES}"
    gcc = require("gcc", "compile the pause image")
    run(
        [
            gcc,
            *PAUSE_CFLAGS,
            f"-DVERSION={version}",
            "-o",
            out / "pause",
            source / "linux" / "pause.c",
        ],
        log=logs / "pause-gcc.log",
        what="compiling pause.c",
    )
    (out / "Containerfile").write_text(PAUSE_CONTAINERFILE)
    with exclusive() as buildah:
        buildah.build(out / "Containerfile", out, reference, logs / "pause-build.log")
        buildah.export(reference, reference, out / "pause.tar", logs / "pause-export.log")


def pause_image() -> Built:
    """The sandbox image every pod starts with, built once per Kubernetes release."""
    directory = cached(cache_root() / f"pause-{versions.KUBERNETES}", _build_pause)
    return Built(pause_reference(), directory / "pause.tar")
