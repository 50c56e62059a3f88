"""Control API routes for ``shipyard jobs``: ``GET /v1/jobs?env=E`` (schedules, next and last runs) and
``POST /v1/jobs/run {env, job}`` (run one now, in the serving release; answers when it has ended)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.control.httpserver import Handler
from shipyard.control.jobs import JobService
from shipyard.errors import BadInput, NotFound
from shipyard.primitives.spec import Spec


def job_routes(jobs: JobService, load_spec: Callable[[], Spec]) -> dict[tuple[str, str], Handler[object]]:
    async def listing(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        spec = load_spec()
        env = q.get("env") or None
        if env is not None:
            spec.env(env)
        return {"jobs": jobs.listing(spec, env)}

    async def run(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, name = body.get("env"), body.get("job")
        if not isinstance(env, str) or not isinstance(name, str) or not env or not name:
            raise BadInput("give the job and the environment: shipyard jobs run NAME --env ENV")
        spec = load_spec()
        run_id = await jobs.start(spec, env, name, trigger="manual")
        await jobs.wait(env, name)
        done = next((r for r in jobs.store.list_job_runs(env, name, limit=50) if r.id == run_id), None)
        if done is None:
            raise NotFound(f"run {run_id} of {name} is not recorded")
        return done.to_json()

    return {("GET", "/v1/jobs"): listing, ("POST", "/v1/jobs/run"): run}
