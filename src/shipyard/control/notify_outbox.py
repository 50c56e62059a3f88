"""The outbox: every pending delivery is sent, retried with exponential backoff, resumed after a restart.

Each delivery is its own task (a receiver that hangs holds only its own deliveries, for at most its
``timeout``); the loop wakes when the notifier writes a delivery and when the next retry is due. A
delivery is marked delivered after its receiver accepted it: one pending when the control plane was
killed is sent after ``shipyard up`` (at least once — a kill between the send and the mark would send it
twice; everything the evaluator decides is written before it is sent, so nothing is decided twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shipyard.control.notify_send import SendFailed, send
from shipyard.control.specwatch import SpecWatch
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.notifications import ReceiverSpec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store
from shipyard.primitives.store.notify import DeliveryRec

log = logging.getLogger("shipyard.control.notify")

BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 300.0
MAX_ATTEMPTS = 12  # 2 s, 4 s, … 5 min: about 25 minutes of trying
IDLE_S = 5.0


def backoff(attempts: int) -> float:
    """Seconds before the attempt after ``attempts`` failed ones."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1)))


def receiver_secrets(spec: Spec, secrets: SecretStore, receiver: ReceiverSpec, env: str | None) -> dict[str, str]:
    """The receiver's secrets from the notification's environment (without one: the first that has them)."""
    names = [n for _, n in receiver.secret_names()]
    if not names:
        return {}
    envs = [env] if env in spec.environments else spec.env_names
    for e in envs:
        values = secrets.values(e)
        if all(n in values for n in names):
            return {n: values[n] for n in names}
    return {}


class Outbox:
    def __init__(self, *, store: Store, clock: Clock, specs: SpecWatch, secrets: SecretStore) -> None:
        self.store, self.clock, self.specs, self.secrets = store, clock, specs, secrets
        self.wake = asyncio.Event()
        self.inflight: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Wake the loop from any thread (the evaluator writes deliveries in a worker thread)."""
        loop = self._loop
        if loop is None:
            return  # not running yet: it reads the pending rows when it starts
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.wake.set()
        else:
            loop.call_soon_threadsafe(self.wake.set)

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                now = self.clock.time()
                try:
                    due = await asyncio.to_thread(self.store.due_deliveries, now)
                    nxt = await asyncio.to_thread(self.store.next_delivery_at)
                except Exception:  # the database may be briefly unavailable: try again later
                    log.exception("notification outbox: could not read the deliveries")
                    due, nxt = [], None
                for d in due:
                    if d.id not in self.inflight:
                        self.inflight.add(d.id)
                        task = asyncio.create_task(self._attempt(d), name=f"deliver-{d.id}")
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)
                wait = IDLE_S if nxt is None else max(0.05, min(IDLE_S, nxt - self.clock.time()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)
                self.wake.clear()
        finally:
            for task in list(self.tasks):
                task.cancel()

    async def _attempt(self, d: DeliveryRec) -> None:
        try:
            await self._send(d)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one delivery must not stop the others
            log.exception("delivery %d crashed", d.id)
        finally:
            self.inflight.discard(d.id)

    async def _send(self, d: DeliveryRec) -> None:
        # The due list was read in a thread: an attempt that finished since may have been listed again.
        fresh = await asyncio.to_thread(self.store.delivery, d.id)
        if fresh is None or fresh.status != "pending" or fresh.attempts != d.attempts:
            return
        spec = self.specs.current()
        receiver = spec.notifications.receiver(d.receiver) if spec is not None else None
        if spec is None or receiver is None:
            await asyncio.to_thread(self.store.delivery_failed, d.id,
                                    error=f"receiver {d.receiver!r} is no longer in shipyard.toml", retry_at=None)
            return
        try:
            values = await asyncio.to_thread(receiver_secrets, spec, self.secrets, receiver, d.env)
            await asyncio.to_thread(send, receiver, d.payload, values, self.clock.time())
        except SendFailed as err:
            attempts = d.attempts + 1
            retry = self.clock.time() + backoff(attempts) if attempts < MAX_ATTEMPTS else None
            log.warning("delivery %d to %s failed (attempt %d%s): %s", d.id, d.receiver, attempts,
                        "" if retry else ", giving up", err)
            await asyncio.to_thread(self.store.delivery_failed, d.id, error=str(err), retry_at=retry)
            if retry is not None:
                self.wake.set()
            return
        await asyncio.to_thread(self.store.delivery_done, d.id, at=self.clock.time())
        self.sent += 1
        log.info("delivered %s notification %d to %s: %s", d.kind, d.id, d.receiver, d.payload.get("title"))

