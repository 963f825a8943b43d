"""Command line for the test bed: ``python -m tests.testbed {build,up,down}``.

``up`` leaves the processes running after it returns (each in its own session),
records them in the run directory's state file, and prints how to reach them;
``down`` stops them from that file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import assets, bed, demo, images, processes
from .toolchain import BedError

DEFAULT_RUN_DIR = Path(".testbed") / "manual"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.testbed",
        description="Real local Kubernetes control plane + Kafka for ScalingDemo's tests.",
    )
    parser.add_argument(
        "command",
        choices=["build", "up", "down", "demo"],
        help="build: fetch and build everything into the cache (KEDA, Helm, the real node, "
        "both images); "
        "up: start a bed and print its kubeconfig and Kafka address; down: stop it; "
        "demo: a bed with its real node, KEDA, the operator as a pod and examples/basic.yaml",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=DEFAULT_RUN_DIR,
        help=f"where the bed keeps certificates, data and logs (default: {DEFAULT_RUN_DIR})",
    )
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args.run_dir.resolve())
    except BedError as error:
        print(f"testbed: {error}", file=sys.stderr)
        return 1


def _build(_: Path) -> int:
    assets.prepare()
    assets.keda()
    assets.helm()
    assets.kubelet()
    images.pause_image()
    images.build_images(images.ARCHIVES)
    return 0


def _refuse_running(run_dir: Path) -> None:
    if (run_dir / bed.STATE_FILE).exists():
        raise BedError(
            f"a bed already runs from {run_dir}; stop it first: "
            f"python -m tests.testbed down --run-dir {run_dir}"
        )


def _up(run_dir: Path) -> int:
    _refuse_running(run_dir)
    processes.keep_running_after_exit()
    started = bed.start(run_dir)
    print(f"export KUBECONFIG={started.kubeconfig}")
    print(f"export {bed.EXISTING_KAFKA_ENV}={started.kafka_bootstrap}")
    if started.prometheus is not None:
        print(
            f"# prometheus: {started.prometheus.url} (scrape targets: {started.prometheus.targets})"
        )
    print(f"# kubectl: {started.kubectl}")
    print(f"# logs: {run_dir / 'logs'}")
    return 0


def _down(run_dir: Path) -> int:
    if not bed.stop_detached(run_dir):
        raise BedError(f"no running bed recorded in {run_dir}")
    print(f"stopped the bed in {run_dir}")
    return 0


def _demo(run_dir: Path) -> int:
    _refuse_running(run_dir)
    return demo.up(run_dir)


_COMMANDS = {"build": _build, "up": _up, "down": _down, "demo": _demo}

if __name__ == "__main__":
    sys.exit(main())
