"""Load verification: an open-model generator, k6-style thresholds, a go / no-go verdict and a report.

``await run_verify(target, spec)`` → ``VerifyResult`` (``.go``, ``.to_json()``, ``.require_go()`` raising
``NoGo``); ``write_report(result, path)`` for the HTML report; ``verify_gate`` for deploy steps (run and
save the report); ``locust.run_locust`` for ``--locustfile``.
"""

from __future__ import annotations

from shipyard.engine.verify.gate import verify_gate
from shipyard.engine.verify.generator import Progress
from shipyard.engine.verify.report import report_path, write_report
from shipyard.engine.verify.result import VerifyResult
from shipyard.engine.verify.runner import run_verify

__all__ = ["Progress", "VerifyResult", "report_path", "run_verify", "verify_gate", "write_report"]
