"""One long-running process of the bed, modelled on controller-runtime's envtest.

A component knows its own defaults (command, flags, environment, config files) and
how to tell that it is ready; a caller changes only what it must through flag
overrides. The bed starts components in dependency order and stops them in
reverse, so every new piece (a real node, a webhook server) is one more subclass
rather than another inline argument list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from .processes import Process
from .toolchain import BedError

DEFAULT_START_TIMEOUT_SECONDS = 90.0


class Component(ABC):
    """A named process with default flags, caller overrides and a readiness probe.

    ``default_flags`` maps ``--flag`` to its value; a value of ``None`` there renders
    the bare flag. In the overrides given to the constructor, ``None`` instead drops
    a default flag, and any other value replaces or adds one.
    """

    name: str
    """Set on the class, or on the instance before ``super().__init__`` where one class
    serves several processes (the real node's port forwarders)."""
    start_timeout: ClassVar[float] = DEFAULT_START_TIMEOUT_SECONDS

    def __init__(self, run_dir: Path, flags: Mapping[str, str | None] | None = None) -> None:
        self.run_dir = run_dir
        self.overrides = dict(flags or {})
        self.process = Process(self.name, [], self.log)

    @property
    def directory(self) -> Path:
        """Where the component keeps its state and config files."""
        return self.run_dir / self.name

    @property
    def log(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @abstractmethod
    def command(self) -> list[str | Path]:
        """The executable and any arguments that come before the flags."""

    def default_flags(self) -> dict[str, str | None]:
        return {}

    def env(self) -> dict[str, str] | None:
        """The process environment; ``None`` inherits the bed's own."""
        return None

    def prepare(self) -> None:
        """Write what the process reads at start (config files, data directories)."""
        return None

    @abstractmethod
    def ready(self) -> bool:
        """Whether the running process serves what its dependants need."""

    def argv(self) -> list[str | Path]:
        flags = self.default_flags()
        for flag, value in self.overrides.items():
            if value is None:
                flags.pop(flag, None)
            else:
                flags[flag] = value
        rendered = [flag if value is None else f"{flag}={value}" for flag, value in flags.items()]
        return [*self.command(), *rendered]

    def launch(self) -> Component:
        """Start the process without waiting, so slow starters boot while others do."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.process.argv = self.argv()
        self.process.env = self.env()
        self.process.start()
        return self

    def wait_ready(self) -> Component:
        if self.process.popen is None:
            raise BedError(f"{self.name} was never launched")
        self.process.wait_ready(self.ready, self.start_timeout)
        return self

    def start(self) -> Component:
        return self.launch().wait_ready()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; safe to call twice."""
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL at once, like a crashed node; safe to call twice."""
        self.process.kill()


class Stack:
    """Components in start order; stopping goes in reverse, and only over what started."""

    def __init__(self) -> None:
        self.components: list[Component] = []

    def launch(self, *components: Component) -> None:
        for component in components:
            self.components.append(component)
            component.launch()

    def start(self, *components: Component) -> None:
        """Launch all of ``components`` together, then wait for each to be ready."""
        self.launch(*components)
        for component in components:
            component.wait_ready()

    def extend(self, components: Iterable[Component]) -> None:
        """Adopt components started elsewhere, so they stop with the rest."""
        self.components.extend(components)

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()

    def stop_part(self, part: Iterable[Component]) -> None:
        """Stop ``part`` (last started first) and forget it; the rest keeps running.

        For a piece of the bed with a shorter life than the bed: the real node, which a
        test may take down to give the machine's one bridge to a bed of its own.
        """
        stopping = set(map(id, part))
        for component in reversed(self.components):
            if id(component) in stopping:
                component.stop()
        self.components = [c for c in self.components if id(c) not in stopping]

    def pids(self) -> list[int]:
        return [component.pid for component in self.components if component.pid is not None]

    def logs(self) -> list[Path]:
        return [component.log for component in self.components]
