"""Verification as a deploy step: run, save the report, hand back the verdict for the executor to act on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shipyard.engine.verify.generator import Progress
from shipyard.engine.verify.report import report_path, write_report
from shipyard.engine.verify.result import VerifyResult
from shipyard.engine.verify.runner import run_verify
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.verify import VerifySpec


async def verify_gate(target: str, spec: VerifySpec, *, env: str, state_dir: Path, project_dir: Path | None = None,
                      on_progress: Callable[[Progress], None] | None = None,
                      clock: Clock | None = None) -> tuple[VerifyResult, Path]:
    """Run verification against ``target`` and write its report under ``state_dir/reports``.

    Returns the result and the report's path; the caller records ``result.to_json()`` and fails the
    deployment with ``result.require_go()`` (``NoGo``, exit 99) on no-go.
    """
    result = await run_verify(target, spec, on_progress=on_progress, project_dir=project_dir, clock=clock)
    path = write_report(result, report_path(state_dir, env, result.started_at), env=env)
    return result, path
