"""Load verification: an open-model generator, k6-style thresholds, a go / no-go verdict and a report.

``await verify_gate(target, spec, env=..., state_dir=...)`` is the one entry for the ``verify`` command and
deploy steps: it runs the verification (built-in generator or ``locustfile``), writes the HTML report and
returns a ``GateOutcome`` (``result, report``; ``.require_go()`` raises ``NoGo``, exit 99; ``.summary()`` is
a deploy step's record). ``run_verify`` and ``write_report`` are its parts.
"""

from __future__ import annotations

from shipyard.engine.verify.gate import GateOutcome, verify_gate
from shipyard.engine.verify.generator import Progress
from shipyard.engine.verify.report import report_path, write_report
from shipyard.engine.verify.result import VerifyResult
from shipyard.engine.verify.runner import run_verify

__all__ = ["GateOutcome", "Progress", "VerifyResult", "report_path", "run_verify", "verify_gate", "write_report"]
