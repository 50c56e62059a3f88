from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.errors import ConfigError
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.envvars import parse_dotenv, resolve_instance_env, resolve_with_sources
from shipyard.primitives.spec.secrets import KEY_ENV, SecretStore, generate_master_key

SPEC = '''\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[defaults.env]
A = "defaults"
B = "defaults"
C = "defaults"
D = "defaults"
[environments.staging]
port = 8200
[environments.staging.env]
B = "environment"
C = "environment"
D = "environment"
'''


def test_precedence_defaults_env_dotenv_secrets(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    write_spec(SPEC)
    (tmp_path / ".env.staging").write_text("C=dotenv\nD=dotenv\n")
    secrets = SecretStore(tmp_path / ".shipyard", clock=ManualClock(), environ={KEY_ENV: generate_master_key()})
    secrets.set("staging", {"D": "secret"})
    spec = load_spec()
    env = resolve_instance_env(spec, "staging", secrets)
    assert env == {"A": "defaults", "B": "environment", "C": "dotenv", "D": "secret"}
    sources = {k: src for k, (_, src) in resolve_with_sources(spec, "staging", secrets).items()}
    assert sources == {"A": "config", "B": "config", "C": ".env.staging", "D": "secret"}
    # A mapping of already-decrypted values works too; no secrets at all leaves the dotenv value.
    assert resolve_instance_env(spec, "staging", {"D": "m"})["D"] == "m"
    assert resolve_instance_env(spec, "staging")["D"] == "dotenv"


def test_other_environments_dotenv_not_used(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    write_spec(SPEC + "[environments.prod]\nport = 8300\n")
    (tmp_path / ".env.staging").write_text("C=dotenv\n")
    assert resolve_instance_env(load_spec(), "prod")["C"] == "defaults"


def test_bad_dotenv_line_names_file_and_line(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    write_spec(SPEC)
    (tmp_path / ".env.staging").write_text("# comment\nGOOD=1\nthis is not a pair\n")
    with pytest.raises(ConfigError) as info:
        resolve_instance_env(load_spec(), "staging")
    assert info.value.problems == [".env.staging:3: expected KEY=VALUE, got 'this is not a pair'"]
    assert info.value.exit_code == 2


def test_dotenv_syntax() -> None:
    text = (
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "  SPACED = padded value   \n"
        "INLINE=abc # trailing comment\n"
        "HASH=a#b\n"
        "EMPTY=\n"
        "SINGLE='literal \\n $x # not a comment'\n"
        'DOUBLE="tab\\there \\"quoted\\" \\\\ done" # comment\n'
        'MULTI="line one\n'
        'line two"\n'
        "URL=postgres://u:p@h/db?x=1\n"
        "EQUALS=a=b=c\n"
    )
    assert parse_dotenv(text, ".env.x") == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded value",
        "INLINE": "abc",
        "HASH": "a#b",
        "EMPTY": "",
        "SINGLE": "literal \\n $x # not a comment",
        "DOUBLE": 'tab\there "quoted" \\ done',
        "MULTI": "line one\nline two",
        "URL": "postgres://u:p@h/db?x=1",
        "EQUALS": "a=b=c",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("NOEQUALS\n", ".env:1: expected KEY=VALUE, got 'NOEQUALS'"),
        ("OK=1\n1BAD=x\n", ".env:2: '1BAD' is not a valid environment variable name (letters, digits and '_')"),
        ("PORT=9\n", ".env:1: 'PORT' is set by shipyard for every instance and cannot be configured"),
        ('A="open\nB=2\n', ".env:1: A: unterminated \" quote"),
        ("A='x' junk\n", ".env:1: A: unexpected text after the closing quote"),
    ],
)
def test_dotenv_errors(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dotenv(text)
    assert info.value.problems == [problem]
