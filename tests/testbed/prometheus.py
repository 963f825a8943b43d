"""A Prometheus server that scrapes whatever the tests register, every second.

Targets come from file service discovery: a test writes a JSON file with
addresses and labels (``scrape``), and Prometheus picks it up without a
restart. Labels let a test stand in for what Kubernetes service discovery adds
in a cluster (namespace, pod, service), so generated queries scoped by those
labels can be checked for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .component import Component
from .processes import free_port, http_ok

SCRAPE_INTERVAL = "1s"


class PrometheusServer(Component):
    """One Prometheus process with a file-discovered set of scrape targets."""

    name = "prometheus"
    start_timeout = 60.0

    def __init__(self, run_dir: Path, binary: Path) -> None:
        super().__init__(run_dir)
        self.binary = binary
        self.targets = self.directory / "targets"
        self.config_file = self.directory / "prometheus.yml"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str | Path]:
        return [self.binary]

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--config.file": str(self.config_file),
            "--storage.tsdb.path": str(self.directory / "data"),
            "--web.listen-address": f"127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time": "1h",
        }

    def prepare(self) -> None:
        self.targets.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [
                {
                    "job_name": "testbed",
                    "file_sd_configs": [
                        {"files": [str(self.targets / "*.json")], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        self.config_file.write_text(yaml.safe_dump(config))

    def ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready")()

    def scrape(self, name: str, addresses: list[str], labels: dict[str, str]) -> Path:
        """Register targets under ``name`` (replacing an earlier set of that name)."""
        path = self.targets / f"{name}.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps([{"targets": addresses, "labels": labels}]))
        partial.replace(path)
        return path

    def forget(self, name: str) -> None:
        """Stop scraping the targets registered under ``name``."""
        (self.targets / f"{name}.json").unlink(missing_ok=True)
