"""Bad [notifications] input: exit 2 naming the key path, no traceback — through the real CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import SPEC, Project, make_project  # noqa: E402

from shipyard.errors import ConfigError  # noqa: E402
from shipyard.primitives.spec import load_spec  # noqa: E402
from shipyard.primitives.spec.notifications import NotificationsSpec, missing_secrets  # noqa: E402

RECEIVERS = """
[notifications]
[[notifications.receivers]]
name = "ops-slack"
kind = "slack"
url_secret = "SLACK_WEBHOOK_URL"
[[notifications.receivers]]
name = "ops-mail"
kind = "email"
smtp_host = "127.0.0.1"
from = "shipyard@example.com"
to = ["ops@example.com"]
"""


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    p = make_project(tmp_path)
    return p


CASES = [
    ('[notifications]\ngroup_wait = "5 minutes"\n', "notifications.group_wait: expected a duration"),
    ('[notifications]\nrepeat_interval = "0s"\n', "notifications.repeat_interval: "),
    (RECEIVERS + '[[notifications.routes]]\nmatch = { severity = "critical" }\nreceivers = ["ops-slack", "pager"]\n',
     "notifications.routes[0].receivers[1]: unknown receiver 'pager' (known: ops-slack, ops-mail)"),
    (RECEIVERS + '[[notifications.routes]]\nmatch = "severity=critical"\nreceivers = ["ops-slack"]\n',
     "notifications.routes[0].match: "),
    (RECEIVERS + '[[notifications.routes]]\nmatch_re = { env = "prod(" }\nreceivers = ["ops-slack"]\n',
     "notifications.routes[0].match_re.env: not a regular expression"),
    ('[notifications]\n[[notifications.receivers]]\nname = "s"\nkind = "slack"\n',
     "notifications.receivers[0].url_secret: a slack receiver needs url_secret"),
    ('[notifications]\n[[notifications.receivers]]\nname = "s"\nkind = "slack"\nurl = "https://hooks.example/x"\n',
     "notifications.receivers[0].url: a Slack webhook URL is a credential"),
    ('[notifications]\n[[notifications.receivers]]\nname = "m"\nkind = "email"\nsmtp_host = "h"\nfrom = "nope"\n'
     'to = ["a@b.c"]\n', "notifications.receivers[0].from: expected an e-mail address"),
    ('[notifications]\n[[notifications.receivers]]\nname = "p"\nkind = "pager"\n', "notifications.receivers[0].kind: "),
]


@pytest.mark.parametrize(("extra", "expected"), CASES)
def test_bad_notifications_name_the_key_path(tmp_path: Path, extra: str, expected: str) -> None:
    path = tmp_path / "shipyard.toml"
    path.write_text(SPEC.format(port=8000, replicas=1, interval="1s", deploy_timeout="30s") + extra)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert err.value.exit_code == 2
    assert expected in str(err.value), str(err.value)


def test_through_the_cli_exit_2_without_traceback(proj: Project) -> None:
    proj.write_spec(extra=CASES[2][0])
    r = proj.cli("config", "show", "--env", "staging")
    assert r.returncode == 2, r.stdout + r.stderr
    assert CASES[2][1] in r.stderr and "Traceback" not in r.stderr


def test_receiver_without_its_secret(proj: Project) -> None:
    proj.write_spec(extra=RECEIVERS)
    proj.commit("v1")
    r = proj.cli("up", "--detach")
    assert r.returncode == 2, r.stdout + r.stderr
    assert ("notifications.receivers[0].url_secret: 'SLACK_WEBHOOK_URL' is not a secret of environment 'staging'"
            in r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    assert proj.control_pid() is None  # nothing started


def test_secrets_are_needed_where_routes_reach() -> None:
    ns = NotificationsSpec.model_validate({
        "receivers": [{"name": "s", "kind": "slack", "url_secret": "SLACK"},
                      {"name": "m", "kind": "email", "smtp_host": "h", "from": "a@b.c", "to": ["d@e.f"],
                       "username": "u", "password_secret": "SMTP_PASSWORD"}],
        "routes": [{"match": {"env": "prod"}, "receivers": ["s"]}, {"match_re": {"env": "prod|staging"},
                                                                      "receivers": ["m"]}]})
    have = {"prod": {"SLACK"}, "staging": set(), "dev": set()}
    missing = missing_secrets(ns, have, lambda env: have[env])
    assert missing == [
        "notifications.receivers[1].password_secret: 'SMTP_PASSWORD' is not a secret of environment 'prod' "
        "(`shipyard secrets set --env prod SMTP_PASSWORD=...`)",
        "notifications.receivers[1].password_secret: 'SMTP_PASSWORD' is not a secret of environment 'staging' "
        "(`shipyard secrets set --env staging SMTP_PASSWORD=...`)"]


def test_every_command_that_would_notify_checks_receiver_secrets(proj: Project) -> None:
    """The secret removed after `up`: deploy, alerts and notify test are bad input (exit 2, the key path) —
    in the CLI before anything is sent, and in the control plane itself (a remote CLI checks nothing)."""
    from shipyard.cli.client import ControlClient
    from shipyard.control.paths import Paths
    from shipyard.errors import ShipyardError

    proj.write_spec(replicas=1, extra=RECEIVERS)
    proj.commit("v1")
    proj.ok("secrets", "set", "--env", "staging", "SLACK_WEBHOOK_URL=http://127.0.0.1:9/x")
    proj.ok("up", "--detach", timeout=90)
    try:
        proj.ok("secrets", "unset", "--env", "staging", "SLACK_WEBHOOK_URL")
        key = "notifications.receivers[0].url_secret: 'SLACK_WEBHOOK_URL' is not a secret of environment 'staging'"
        for args in (("deploy", "--env", "staging"), ("alerts",), ("alerts", "--env", "staging"),
                     ("notify", "test", "--receiver", "ops-slack", "--env", "staging")):
            r = proj.cli(*args)
            assert r.returncode == 2 and key in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        client = ControlClient(Paths(proj.dir))
        for method, path, body in (("GET", "/v1/alerts", None), ("POST", "/v1/deploy", {"env": "staging"})):
            with pytest.raises(ShipyardError) as err:
                list(client.stream(path, body)) if method == "POST" else client.call(method, path)
            assert err.value.exit_code == 2 and key in str(err.value), (path, str(err.value))
        assert proj.json("history", "--env", "staging", "--json") == []  # nothing was started
    finally:
        proj.cli("down", timeout=60)
        proj.kill_everything()
