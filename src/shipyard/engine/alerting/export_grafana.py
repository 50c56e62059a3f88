"""``shipyard export grafana``: a Grafana dashboard (JSON model, schemaVersion 39) over the series
shipyard's endpoint exports, for a Prometheus data source (pure).

Panels, per environment (the ``env`` variable) and by release: requests per second, error rate, P50 /
P95 / P99 latency, instances up, and firing alerts; deploys are annotations (a change of
``shipyard_deployments_total``). Every query uses a fixed 1m window (shipyard's own rate window) so the
expressions are plain PromQL (``$env`` is the only variable).
"""

from __future__ import annotations

from typing import Any

from shipyard.primitives.spec import Spec

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ENV = 'env="$env"'


def _reqs(extra: str = "", by: str = "release") -> str:
    return f"sum by ({by}) (rate(http_requests_total{{{ENV}{extra}}}[1m]))"


def _quantile(q: float) -> str:
    return (f"histogram_quantile({q}, sum by (release, le) "
            f"(rate(http_request_duration_seconds_bucket{{{ENV}}}[1m])))")


def _panel(pid: int, title: str, unit: str, targets: list[tuple[str, str]], x: int, y: int,
           w: int = 12, kind: str = "timeseries") -> dict[str, Any]:
    return {
        "id": pid, "type": kind, "title": title, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard(spec: Spec) -> dict[str, Any]:
    envs = spec.env_names
    failed = _reqs(',code=~"5xx|none"')
    panels = [
        _panel(1, "Requests per second", "reqps", [(_reqs(), "{{release}}")], 0, 0),
        _panel(2, "Error rate (5xx and unanswered)", "percentunit",
               [(f"{failed} / {_reqs()}", "{{release}}")], 12, 0),
        _panel(3, "Latency P50 / P95 / P99", "s",
               [(_quantile(q), f"{{{{release}}}} p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], 0, 8, w=24),
        _panel(4, "Instances up", "short", [(f"sum by (release) (shipyard_instances_up{{{ENV}}})", "{{release}}")],
               0, 16),
        _panel(5, "Firing alerts", "short",
               [(f"sum by (alertname) (shipyard_alert_firing{{{ENV}}})", "{{alertname}}")], 12, 16),
    ]
    return {
        "uid": f"shipyard-{spec.app.name}"[:40],
        "title": f"shipyard: {spec.app.name}",
        "tags": ["shipyard"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"name": "env", "type": "query", "label": "Environment", "datasource": DATASOURCE,
             "query": "label_values(http_requests_total, env)", "refresh": 2,
             "current": {"text": envs[0], "value": envs[0]} if envs else {},
             "options": [{"text": e, "value": e, "selected": i == 0} for i, e in enumerate(envs)]},
        ]},
        "annotations": {"list": [
            {"name": "Deploys", "enable": True, "iconColor": "blue", "datasource": DATASOURCE,
             "expr": f"sum by (outcome) (changes(shipyard_deployments_total{{{ENV}}}[1m])) > 0",
             "step": "60s", "titleFormat": "deploy {{outcome}}", "textFormat": "$env"},
            {"name": "Rollbacks", "enable": True, "iconColor": "red", "datasource": DATASOURCE,
             "expr": f"sum by (reason) (changes(shipyard_rollbacks_total{{{ENV}}}[1m])) > 0",
             "step": "60s", "titleFormat": "rollback ({{reason}})", "textFormat": "$env"},
        ]},
        "panels": panels,
    }


def expressions(doc: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard (panel targets and annotations), for checking."""
    out = [t["expr"] for p in doc.get("panels", []) for t in p.get("targets", [])]
    return out + [a["expr"] for a in doc.get("annotations", {}).get("list", []) if "expr" in a]
