"""Pods' logs from the API server (``pods/log``, which the API server proxies from the node's kubelet),
thin: one pod's lines, stamped by the kubelet (``timestamps=true``), with the API's failures turned into
shipyard's errors; and the lines of several pods followed together, new pods joined as they appear.

The kubelet stamps every line when the container runtime wrote it (RFC 3339, nanoseconds), so unlike the
local instances' files the lines of several pods interleave by a real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx2
from lightkube import ApiError

from shipyard.control.kube.cluster import Cluster
from shipyard.engine.kube.render import CONTAINER
from shipyard.errors import BadInput, NotPermitted, ShipyardError

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2}) ?")


@dataclass(frozen=True)
class PodLine:
    pod: str
    text: str
    time: float | None  # the kubelet's stamp, seconds since the epoch


def split_stamp(pod: str, raw: str) -> PodLine:
    """A ``timestamps=true`` line: the kubelet's RFC 3339 stamp, a space, the text."""
    m = _STAMP.match(raw)
    if m is None:
        return PodLine(pod, raw, None)
    day, frac, zone = m.group(1), m.group(2) or "", m.group(3)
    t = datetime.fromisoformat(day + ("+00:00" if zone == "Z" else zone)).timestamp()
    return PodLine(pod, raw[m.end():], t + (float("0." + frac) if frac else 0.0))


@contextlib.contextmanager
def _errors(cluster: Cluster, pod: str) -> Iterator[None]:
    what = f"reading the log of pod {pod}"
    try:
        yield
    except ApiError as exc:
        code, message = exc.status.code, exc.status.message or str(exc)
        if code == 403:
            raise NotPermitted(f"{what}: not permitted in namespace {cluster.namespace}: {message}") from exc
        if code in (400, 404):  # not started yet, gone, or no such container
            raise BadInput(f"{what}: {message}") from exc
        raise ShipyardError(f"{what}: {message} (HTTP {code})") from exc
    except httpx2.TransportError as exc:
        raise ShipyardError(f"cannot reach the Kubernetes API server at {cluster.server}: "
                            f"{exc or type(exc).__name__}") from exc
    except RuntimeError as exc:  # lightkube reads a refused follow stream's body synchronously
        raise ShipyardError(f"{what}: the API server refused to stream it") from exc


async def pod_lines(cluster: Cluster, pod: str, *, follow: bool = False, since: int | None = None,
                    tail: int | None = None) -> AsyncIterator[PodLine]:
    """The app container's log lines, oldest first; ``follow`` keeps reading until the container ends
    (a real kubelet closes the stream then) or the caller stops."""
    with _errors(cluster, pod):
        stream = cluster.client.log(pod, namespace=cluster.namespace, container=CONTAINER, follow=follow,
                                    since=since, tail_lines=tail, timestamps=True, newlines=False)
        async for raw in stream:
            yield split_stamp(pod, raw)


async def history(cluster: Cluster, pods: list[str], *, tail: int | None, since: int | None
                  ) -> dict[str, list[PodLine]]:
    """Each pod's newest ``tail`` lines (all with None), read one pod after another."""
    out: dict[str, list[PodLine]] = {}
    for pod in pods:
        out[pod] = [line async for line in pod_lines(cluster, pod, tail=tail, since=since)]
    return out


def newest(per_pod: Mapping[str, list[PodLine]], n: int | None) -> list[PodLine]:
    """The newest ``n`` lines across pods, oldest first, interleaved by the kubelet's stamps."""
    merged = sorted(((line.time or 0.0, pod, i, line) for pod, lines in per_pod.items()
                     for i, line in enumerate(lines)), key=lambda x: x[:3])
    lines = [x[3] for x in merged]
    return lines if n is None else (lines[-n:] if n > 0 else [])


class Follower:
    """Follows several pods' logs at once into one queue; ``watch`` adds the pods that appear later.

    A pod whose history was shown is followed from its last line on: the stream starts a second before it
    (``sinceSeconds`` counts whole seconds) and the lines up to that one are dropped."""

    def __init__(self, cluster: Cluster, last: Mapping[str, PodLine | None]) -> None:
        self.cluster = cluster
        self.queue: asyncio.Queue[PodLine | BaseException] = asyncio.Queue()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.last = dict(last)

    def add(self, pod: str, now: float) -> None:
        if pod not in self.tasks:
            self.tasks[pod] = asyncio.create_task(self._follow(pod, self.last.get(pod), now))

    async def _follow(self, pod: str, last: PodLine | None, now: float) -> None:
        since = None if last is None or last.time is None else max(1, int(now - last.time) + 2)
        seen = last is None
        try:
            async for line in pod_lines(self.cluster, pod, follow=True, since=since):
                if not seen:
                    assert last is not None
                    if line.time is not None and last.time is not None and line.time < last.time:
                        continue
                    if line == last:
                        seen = True
                        continue
                    if line.time is not None and last.time is not None and line.time == last.time:
                        continue
                    seen = True
                await self.queue.put(line)
        except BadInput:
            return  # the pod went away, or its container has not started: a later poll retries
        except ShipyardError as err:
            await self.queue.put(err)
        finally:
            if self.tasks.get(pod) is asyncio.current_task():
                del self.tasks[pod]  # so a restarted or later-started container is followed again

    async def watch(self, pods: Callable[[], Awaitable[list[str]]], now: Callable[[], float],
                    sleep: Callable[[float], Awaitable[None]], every: float = 2.0) -> None:
        """Add the pods ``pods()`` lists, every ``every`` seconds, until cancelled."""
        while True:
            try:
                for pod in await pods():
                    self.add(pod, now())
            except ShipyardError as err:
                await self.queue.put(err)
            await sleep(every)

    async def lines(self) -> AsyncIterator[PodLine]:
        while True:
            item = await self.queue.get()
            if isinstance(item, BaseException):
                raise item
            self.last[item.pod] = item
            yield item

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
