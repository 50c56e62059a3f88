"""Alert series that do not come from the metric history: ``cert_expires_in`` (the router's TLS
certificate files) and ``promql:`` expressions (a query to ``[metrics] prometheus``).

A PromQL rule's value is its query's worst sample (max; Prometheus' own alerting rules fire per sample,
shipyard's rule is one per environment); an empty answer is no value (not true). A Prometheus that
cannot be reached gives no value either — the rule is then not true, and the evaluator logs why once
per failure streak instead of every 5 s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from shipyard.control.certs import CertExpiry
from shipyard.engine.alerting.rules import Rule
from shipyard.engine.analysis.prometheus import PrometheusError, query
from shipyard.primitives.spec import Spec

log = logging.getLogger("shipyard.control")

PROMQL_TIMEOUT_S = 3.0


class ExtraValues:
    def __init__(self, certs: CertExpiry | None) -> None:
        self.certs = certs
        self._failing: set[str] = set()

    def values(self, spec: Spec, env: str, rules: Iterable[Rule], now: float) -> dict[str, float | None]:
        """``cert_expires_in`` and every ``promql:`` rule's value (keyed by its expression text)."""
        out: dict[str, float | None] = {}
        rules = list(rules)
        if self.certs is not None and any(r.expr.series == "cert_expires_in" for r in rules):
            at = self.certs.by_env(spec).get(env)
            out["cert_expires_in"] = None if at is None else at - now
        url = spec.metrics.prometheus
        for r in rules:
            if r.expr.promql is None or url is None:
                continue
            promql = r.expr.promql.replace("{{ env }}", env).replace("{{env}}", env)
            try:
                out[r.expr.text] = query(url, promql, at=now, timeout=PROMQL_TIMEOUT_S).value("above")
                self._failing.discard(r.expr.text)
            except PrometheusError as err:
                out[r.expr.text] = None
                if r.expr.text not in self._failing:
                    self._failing.add(r.expr.text)
                    log.warning("alert %s on %s: %s", r.name, env, err)
        return out
