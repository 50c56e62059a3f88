"""shipyard report: deploys, availability against the SLO, latency, alerts, incidents and backups over a period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    period: Annotated[str, typer.Option("--period", help="1h, 24h or 7d.")] = "24h",
    html: Annotated[Path | None, typer.Option("--html", help="Write the report as one self-contained HTML file.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
) -> None:
    """A report of ENV over the last PERIOD."""
    import os
    from urllib.parse import urlencode

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("GET", "/v1/report?" + urlencode({"env": env, "period": period}))
    if html is not None:
        try:
            fd = os.open(html, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(doc["html"])
        except OSError as exc:
            ap.abort(f"--html: cannot write {html}: {exc.strerror}", 2)
    rep = doc["report"]
    if json_out:
        ap.print_json(rep)
        return
    av, tr, dep = rep["availability"], rep["traffic"], rep["deploys"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.3f}%"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f}ms"

    verdict = "" if av["met"] is None else (" (SLO met)" if av["met"] else " (SLO missed)")
    ap.echo(f"{rep['title']}")
    ap.echo(f"availability {pct(av['value'])} vs SLO {pct(av['slo'])}{verdict}; {tr['requests']} requests, "
            f"error rate {pct(tr['error_rate'])}; P50 {ms(tr['p50'])} P95 {ms(tr['p95'])} P99 {ms(tr['p99'])}")
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(dep["outcomes"].items()))
    ap.echo(f"deploys {dep['count']}{f' ({outcomes})' if outcomes else ''}; rollbacks {len(dep['rollbacks'])}; "
            f"alerts fired {rep['alerts']['fired']}; incidents {len(rep['incidents'])}")
    if html is not None:
        ap.echo(f"wrote {html}")
