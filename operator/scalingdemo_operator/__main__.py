"""Command line: `scalingdemo-operator` or `python -m scalingdemo_operator`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import kopf

from .settings import Settings

DEFAULTS = Settings()


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


SECONDS = _at_least(0, float, "a number of seconds")
DELAY = _at_least(0.1, float, "a number of seconds")
COUNT = _at_least(1, int, "a whole number")


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
    parser.add_argument(
        "--metrics-port", type=int, default=DEFAULTS.metrics_port, help="port of /metrics"
    )
    parser.add_argument(
        "--metrics-address", default=DEFAULTS.metrics_address, help="address of /metrics"
    )
    parser.add_argument(
        "--liveness", default=DEFAULTS.liveness, help="kopf liveness endpoint URL ('' disables it)"
    )
    parser.add_argument(
        "--resync-seconds",
        type=SECONDS,
        default=DEFAULTS.resync_seconds,
        help="reconcile every ScalingDemo this often, to repair drift no event announced "
        "(0 disables; default: %(default)s)",
    )
    parser.add_argument(
        "--retry-seconds",
        type=DELAY,
        default=DEFAULTS.retry_seconds,
        help="first delay before a reconcile that could not finish (Kafka unusable, an error) "
        "is retried; it doubles per failed attempt (default: %(default)s)",
    )
    parser.add_argument(
        "--max-retry-seconds",
        type=DELAY,
        default=DEFAULTS.max_retry_seconds,
        help="longest delay between retries (default: %(default)s)",
    )
    parser.add_argument(
        "--topic-delete-attempts",
        type=COUNT,
        default=DEFAULTS.topic_delete_attempts,
        help="attempts to delete the topics of a ScalingDemo with deletionPolicy Delete before "
        "it is let go with a Warning event (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrent-reconciles",
        type=COUNT,
        default=DEFAULTS.concurrent_reconciles,
        help="ScalingDemos reconciled at a time, whatever started the reconcile (a new demo, "
        "a child's change, a retry, the resync); the others wait their turn in arrival order "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--scaling-status-seconds",
        type=DELAY,
        default=DEFAULTS.scaling_status_seconds,
        help="write a demo's status.scaling (replicas, trigger values, HPA and KEDA conditions) "
        "at most this often while it scales (default: %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    arguments = parser.parse_args(argv)
    if arguments.max_retry_seconds < arguments.retry_seconds:
        parser.error("--max-retry-seconds must not be less than --retry-seconds")
    return arguments


def settings_from(arguments: argparse.Namespace) -> Settings:
    return Settings(
        namespaces=tuple(arguments.namespace),
        metrics_port=arguments.metrics_port,
        metrics_address=arguments.metrics_address,
        liveness=arguments.liveness or None,
        resync_seconds=arguments.resync_seconds,
        retry_seconds=arguments.retry_seconds,
        max_retry_seconds=arguments.max_retry_seconds,
        topic_delete_attempts=int(arguments.topic_delete_attempts),
        concurrent_reconciles=int(arguments.concurrent_reconciles),
        scaling_status_seconds=arguments.scaling_status_seconds,
        verbose=arguments.verbose,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the operator until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    settings = settings_from(_arguments(argv))
    kopf.configure(verbose=settings.verbose)
    from . import (
        kopf_toggles,
        scaling_handlers,  # noqa: F401  (importing registers its handlers with kopf)
    )
    from .cache import Cache
    from .handlers import Operator  # importing registers the handlers with kopf
    from .kube import Kube, client_from_environment
    from .reconciler import Reconciler
    from .scaling_status import ScalingStatus

    kopf_toggles.install()
    kube = Kube(client_from_environment(), settings.request_seconds)
    cache = Cache()
    reconciler = Reconciler(kube, cache, settings)
    scaling = ScalingStatus(kube, cache, reconciler.post, settings.scaling_status_seconds)
    kopf.run(
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness,
        memo=Operator(settings, kube, cache, reconciler, scaling),
    )


if __name__ == "__main__":
    main()
