"""Console entry point: `scalingdemo-workload` or `python -m scalingdemo_workload`.

Configuration comes from the environment only (the operator sets it on the Deployment); the
command line exists to print that documentation.
"""

import argparse
import logging
import sys

from .config import ConfigError, describe_settings, load_settings
from .server import serve
from .throttle import LibraryLogFilter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="scalingdemo-workload",
        description="The ScalingDemo workload: HTTP API, Kafka producer and workers.",
        epilog="Configuration (environment variables; any of them can instead be read from\n"
        "the file named by the same variable with a _FILE suffix, for mounted Secrets):\n"
        + describe_settings(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as err:
        sys.exit(f"invalid configuration: {err}")
    logging.basicConfig(
        level=max(logging.INFO, logging.getLevelName(settings.log_level)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger(__package__).setLevel(settings.log_level)
    library_filter = LibraryLogFilter(("aiokafka", "aiohttp"))
    for handler in logging.getLogger().handlers:
        handler.addFilter(library_filter)
    serve(settings)


if __name__ == "__main__":
    main()
