"""shipyard export prometheus|grafana: shipyard's alert rules and a dashboard for your own Prometheus and Grafana.

Both read shipyard.toml only (no control plane needed): the rules are the ones ``shipyard alerts`` lists
(the shipped defaults and ``[[alerts]]``), rendered by ``engine/alerting/export_prometheus.py`` and
``export_grafana.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from shipyard.cli.app import AppContext

app = typer.Typer(help="Render shipyard's alert rules and a dashboard for your own Prometheus and Grafana.",
                  no_args_is_help=True)

RULES_FILE = "shipyard-rules.yml"
SCRAPE_FILE = "prometheus.yml"


@app.command("prometheus")
def prometheus(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write prometheus.yml and shipyard-rules.yml "
                                             "into this directory (default: print the rule file).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="host:port Prometheus scrapes "
                                               "(default: [metrics] listen).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """A scrape config for shipyard's endpoint and every alert rule as a Prometheus rule file."""
    from shipyard.cli.app import AppContext
    from shipyard.engine.alerting.export_prometheus import rule_file, scrape_config

    app_ = AppContext.of(ctx)
    spec = app_.spec
    where = target or spec.metrics.listen
    if not where:
        app_.abort("--target: [metrics] listen is \"\" (the endpoint is off); name the host:port to scrape", 2)
    if target is not None and (":" not in target or not target.rpartition(":")[2].isdigit()):
        app_.abort(f"--target: expected host:port such as 127.0.0.1:9420, got {target!r}", 2)
    rules = rule_file(spec)
    scrape = scrape_config(spec, where, RULES_FILE)
    written: list[str] = []
    if out is not None:
        _writable_dir(app_, out)
        for name, doc in ((RULES_FILE, rules), (SCRAPE_FILE, scrape)):
            (out / name).write_text(doc.text)
            written.append(str(out / name))
    n = sum(len(g["rules"]) for g in rules.document["groups"])
    if json_out:
        app_.print_json({"rules": rules.document, "scrape_config": scrape.document, "written": written,
                         "count": n})
    elif out is None:
        typer.echo(rules.text, nl=False)
    else:
        app_.echo(f"wrote {n} rules for {len(rules.document['groups'])} environments and a scrape config for "
                  f"{where}:\n  " + "\n  ".join(written))
        app_.echo(f"check them with: promtool check config {out / SCRAPE_FILE}")


@app.command("grafana")
def grafana(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the dashboard JSON to this file "
                                             "(default: print it).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document (the dashboard).")] = False,
) -> None:
    """A Grafana dashboard: RPS, errors, P50/P95/P99 by release, instances, alerts, deploy annotations."""
    from shipyard.cli.app import AppContext
    from shipyard.engine.alerting.export_grafana import dashboard

    app_ = AppContext.of(ctx)
    doc = dashboard(app_.spec)
    text = json.dumps(doc, indent=2) + "\n"
    if out is None or json_out:
        typer.echo(text, nl=False)
    if out is not None:
        _writable_dir(app_, out.parent if str(out.parent) else Path("."))
        out.write_text(text)
        if not json_out:
            app_.echo(f"wrote {out} (import it in Grafana: Dashboards → New → Import)")


def _writable_dir(app_: AppContext, path: Path) -> None:
    if path.exists() and not path.is_dir():
        app_.abort(f"--out: {path} exists and is not a directory", 2)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        app_.abort(f"--out: cannot create {path}: {exc.strerror}", 2)


# `shipyard export kubernetes` (cli/export_kubernetes.py: the manifests of a kubernetes environment).
from shipyard.cli.export_kubernetes import command as _kubernetes  # noqa: E402

app.command("kubernetes", help="Write a kubernetes environment's manifests (secrets masked).")(_kubernetes)
