"""Command line: `scalingdemo-operator` or `python -m scalingdemo_operator`."""

from __future__ import annotations

import argparse

import kopf


def _seconds(text: str) -> float:
    """argparse type: a non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


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
        type=_seconds,
        default=300.0,
        help="reconcile every ScalingDemo this often, to repair drift no event announced "
        "(0 disables; default: %(default)s)",
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
        ),
    )


if __name__ == "__main__":
    main()
