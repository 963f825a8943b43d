"""Command line: `scalingdemo-operator` or `python -m scalingdemo_operator`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import kopf

from .topic_sync import DELETE_ATTEMPTS


def _at_least(minimum: float, convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    """argparse type: a number of `minimum` or more (argparse names the option on failure)."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum:g} or more, not {text}")
        return value

    return parse


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scalingdemo-operator",
        description="Reconcile ScalingDemo resources into running autoscaling demos.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); all namespaces when omitted",
    )
    parser.add_argument("--metrics-port", type=int, default=9090, help="port of /metrics")
    parser.add_argument("--metrics-address", default="0.0.0.0", help="address of /metrics")
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8081/healthz",
        help="kopf liveness endpoint URL ('' disables it)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=_at_least(0, float, "a number of seconds"),
        default=300.0,
        help="reconcile every ScalingDemo this often, to repair drift no event announced "
        "(0 disables; default: %(default)s)",
    )
    parser.add_argument(
        "--topic-delete-attempts",
        type=_at_least(1, int, "a whole number"),
        default=DELETE_ATTEMPTS,
        help="attempts to delete the topics of a ScalingDemo with deletionPolicy Delete before "
        "it is let go with a Warning event (default: %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the operator until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    arguments = _arguments(argv)
    kopf.configure(verbose=arguments.verbose)
    from . import handlers  # noqa: F401  (registers the handlers with kopf)

    kopf.run(
        standalone=True,
        clusterwide=not arguments.namespace,
        namespaces=arguments.namespace,
        liveness_endpoint=arguments.liveness or None,
        memo=kopf.Memo(
            metrics_port=arguments.metrics_port,
            metrics_address=arguments.metrics_address,
            namespaces=arguments.namespace,
            resync_seconds=arguments.resync_seconds,
            topic_delete_attempts=arguments.topic_delete_attempts,
        ),
    )


if __name__ == "__main__":
    main()
