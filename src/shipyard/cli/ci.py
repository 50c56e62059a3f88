"""shipyard ci github: write a GitHub Actions workflow — tests on pull requests, staging on a push to the
default branch, prod through a GitHub environment with required reviewers; the deploys reach the control
plane through SHIPYARD_URL / SHIPYARD_TOKEN (no project checkout on the runner)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Write a CI workflow for the project.", no_args_is_help=True)

WORKFLOW = """\
# Written by `shipyard ci github`. Tests and deploys run on GitHub's runners; the deploys drive the control
# plane over its API (README "Remote use") with secrets SHIPYARD_URL (https://host:port of its
# `[control] listen`), SHIPYARD_TOKEN and, unless a public CA signed its certificate, SHIPYARD_CA_PEM (that
# CA, PEM). Repository secrets, or secrets of the GitHub environments "{staging}" and "{prod}" (each may hold
# its own token); only the deploy jobs see them, never the tests of a pull request. The control plane
# fetches the pushed commit from its checkout's origin (this repository). Add required reviewers to the
# "{prod}" environment: that is the approval before prod.
name: shipyard

on:
  pull_request:
  push:
    branches: [{branch}]

permissions:
  contents: read

jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
        with:
          python-version: "3.11"
      - name: Test
        run: {test}

  {staging}:
    needs: test
    if: github.event_name == 'push'
    runs-on: ubuntu-latest
    environment: {staging}
    concurrency:
      group: shipyard-{staging}
      cancel-in-progress: false
    env:
      SHIPYARD_URL: ${{{{ secrets.SHIPYARD_URL }}}}
      SHIPYARD_TOKEN: ${{{{ secrets.SHIPYARD_TOKEN }}}}
      SHIPYARD_CA_PEM: ${{{{ secrets.SHIPYARD_CA_PEM }}}}
      SHIPYARD_PERFORMER: ${{{{ github.actor }}}}
      # How the runner gets the shipyard command (a package name, a wheel URL or git+https://…).
      SHIPYARD_PACKAGE: ${{{{ vars.SHIPYARD_PACKAGE || 'shipyard' }}}}
    steps:
      - uses: actions/setup-python@v6
        with:
          python-version: "3.11"
      - name: Install shipyard and trust the control plane
        run: |
{setup}
      - name: Deploy to {staging}
        # exit 0 deployed, 1 failed or rolled back, 2 bad input, 3 refused (lock, window, promotion),
        # 4 not permitted (token), 99 verify no-go
        run: shipyard deploy --env {staging} --ref "$GITHUB_SHA" --json

  {prod}:
    needs: {staging}
    runs-on: ubuntu-latest
    environment: {prod}
    concurrency:
      group: shipyard-{prod}
      cancel-in-progress: false
    env:
      SHIPYARD_URL: ${{{{ secrets.SHIPYARD_URL }}}}
      SHIPYARD_TOKEN: ${{{{ secrets.SHIPYARD_TOKEN }}}}
      SHIPYARD_CA_PEM: ${{{{ secrets.SHIPYARD_CA_PEM }}}}
      SHIPYARD_PERFORMER: ${{{{ github.actor }}}}
      # How the runner gets the shipyard command (a package name, a wheel URL or git+https://…).
      SHIPYARD_PACKAGE: ${{{{ vars.SHIPYARD_PACKAGE || 'shipyard' }}}}
    steps:
      - uses: actions/setup-python@v6
        with:
          python-version: "3.11"
      - name: Install shipyard and trust the control plane
        run: |
{setup}
      - name: Promote the release serving {staging} to {prod}
        run: shipyard deploy --env {prod} --from {staging} --json
"""
SETUP = """\
python -m pip install --quiet "$SHIPYARD_PACKAGE"
if [ -n "$SHIPYARD_CA_PEM" ]; then
  printf '%s\\n' "$SHIPYARD_CA_PEM" > "$RUNNER_TEMP/shipyard-ca.pem"
  echo "SHIPYARD_CA=$RUNNER_TEMP/shipyard-ca.pem" >> "$GITHUB_ENV"
fi"""


@app.command("github")
def github(
    ctx: typer.Context,
    staging: Annotated[str | None, typer.Option("--staging", help="Deployed on every push (default: staging).")]
    = None,
    prod: Annotated[str | None, typer.Option("--prod", help="Promoted after approval (default: prod/production).")]
    = None,
    test: Annotated[str | None, typer.Option("--test", help="The test command (default: make test, or pytest).")]
    = None,
    branch: Annotated[str, typer.Option("--branch", help="The default branch.")] = "main",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing workflow.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Write .github/workflows/shipyard.yml."""
    import re

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    names = ap.spec.env_names
    stg = staging or ("staging" if "staging" in names else names[0])
    prd = prod or next((n for n in ("prod", "production") if n in names), names[-1])
    for flag, name in (("--staging", stg), ("--prod", prd)):
        ap.env(name)  # unknown environment → exit 2
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            ap.abort(f"{flag}: {name!r} cannot name a workflow job", 2)
    if stg == prd:
        ap.abort(f"staging and prod are both {stg!r}: give --staging and --prod", 2)
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        ap.abort(f"--branch: {branch!r} is not a branch name", 2)
    command = test or _test_command(ap.project.dir)
    path = ap.project.dir / ".github" / "workflows" / "shipyard.yml"
    if path.exists() and not force:
        ap.abort(f"{path} exists; --force to overwrite it", 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    setup = "\n".join(" " * 10 + line for line in SETUP.splitlines())
    path.write_text(WORKFLOW.format(staging=stg, prod=prd, branch=branch, test=_yaml_scalar(command), setup=setup))
    if json_out:
        ap.print_json({"path": str(path), "staging": stg, "prod": prd, "test": command})
    else:
        ap.echo(f"wrote {path}: tests on pull requests, {stg} on a push to {branch}, {prd} after approval")
        ap.echo(f"next: repository secrets SHIPYARD_URL (the control plane's [control] listen, https), "
                f"SHIPYARD_TOKEN and, for a private CA, SHIPYARD_CA_PEM; required reviewers on the GitHub "
                f"environment '{prd}'")


def _test_command(project: object) -> str:
    from pathlib import Path

    makefile = Path(str(project)) / "Makefile"
    if makefile.exists() and "\ntest:" in "\n" + makefile.read_text(errors="replace"):
        return "make test"
    return "python -m pip install pytest && python -m pytest"


def _yaml_scalar(text: str) -> str:
    """A command as a YAML plain scalar when safe, else double-quoted."""
    import json

    if text and text[0] not in "!&*{}[]|>'\"%@`#-?:," and ": " not in text and " #" not in text:
        return text
    return json.dumps(text)
