"""A snapshot of one environment's serving state, the input of every strategy."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InstanceView:
    id: str
    release: str
    ready: bool
    role: str = "stable"
    process: str = "web"  # its process type; only web is routed


@dataclass(frozen=True)
class EnvState:
    env: str
    current_release: str | None
    previous_release: str | None
    instances: tuple[InstanceView, ...] = ()
    weights: dict[str, int] = field(default_factory=dict)

    def of_release(self, release: str | None, process: str = "web") -> list[InstanceView]:
        return [i for i in self.instances if i.release == release and i.process == process]

    def workers(self, *releases: str | None) -> list[InstanceView]:
        """Instances of the process types that are not routed, of ``releases``."""
        return [i for i in self.instances if i.process != "web" and i.release in releases]

    def is_warm(self, release: str, replicas: int) -> bool:
        """A release is warm when enough of its instances are running and ready to take all traffic."""
        ready = [i for i in self.of_release(release) if i.ready]
        return len(ready) >= max(1, replicas)

    def other_releases(self, *keep: str | None) -> list[str]:
        seen: list[str] = []
        for i in self.instances:
            if i.release not in keep and i.release not in seen:
                seen.append(i.release)
        return seen
