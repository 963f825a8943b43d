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

from .processes import Process, free_port, http_ok

START_TIMEOUT_SECONDS = 60.0
SCRAPE_INTERVAL = "1s"


class PrometheusServer:
    """One Prometheus process with a file-discovered set of scrape targets."""

    def __init__(self, binary: Path, run_dir: Path) -> None:
        self.binary = binary
        self.directory = run_dir / "prometheus"
        self.targets = self.directory / "targets"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    def launch(self) -> Process:
        """Write the config and start the server without waiting for it."""
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
        config_file = self.directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.process = Process(
            "prometheus",
            [
                self.binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            self.directory / "prometheus.log",
        )
        return self.process.start()

    def wait_ready(self) -> None:
        assert self.process is not None
        self.process.wait_ready(http_ok(f"{self.url}/-/ready"), START_TIMEOUT_SECONDS)

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
