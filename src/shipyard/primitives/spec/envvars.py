"""An instance's environment: ``[defaults.env]`` → ``[environments.X.env]`` → ``.env.X`` → secrets.

Later sources win. The ``.env.X`` file next to shipyard.toml uses dotenv syntax: ``KEY=VALUE`` lines,
``export `` prefixes, ``#`` comments, single quotes (literal) and double quotes (``\\n``-style escapes),
quoted values may span lines. No ``${VAR}`` expansion: values are taken as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from shipyard.errors import ConfigError
from shipyard.primitives.spec.models import Spec, check_var_name

SOURCE_CONFIG = "config"
SOURCE_SECRET = "secret"


class SecretSource(Protocol):
    def values(self, env: str) -> dict[str, str]: ...


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_KEY = re.compile(r"^\s*(?:export\s+)?([^=\s]+)\s*=\s*(.*)$", re.DOTALL)


def dotenv_path(project_dir: Path, env_name: str) -> Path:
    return project_dir / f".env.{env_name}"


def parse_dotenv(text: str, name: str = ".env") -> dict[str, str]:
    """Parse dotenv text; a bad line is a ``ConfigError`` naming ``name:line``."""
    out: dict[str, str] = {}
    problems: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno, line = i + 1, lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _KEY.match(line)
        if not m:
            problems.append(f"{name}:{lineno}: expected KEY=VALUE, got {stripped[:40]!r}")
            continue
        key, rest = m.group(1), m.group(2)
        try:
            check_var_name(key)
        except ValueError as exc:
            problems.append(f"{name}:{lineno}: {exc}")
            continue
        if rest[:1] in ("'", '"'):
            # A quoted value may continue on the following lines until its closing quote.
            while (value := _quoted(rest)) is None and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
            if value is None:
                problems.append(f"{name}:{lineno}: {key}: unterminated {rest[0]} quote")
                continue
            text_value, tail = value
            if tail.strip() and not tail.strip().startswith("#"):
                problems.append(f"{name}:{lineno}: {key}: unexpected text after the closing quote")
                continue
            out[key] = text_value
        else:
            out[key] = re.split(r"\s#", rest, maxsplit=1)[0].strip()
    if problems:
        raise ConfigError(f"{name}: invalid dotenv file", problems=problems)
    return out


def _quoted(rest: str) -> tuple[str, str] | None:
    """(value, text after the closing quote) or None when the quote is not closed yet."""
    quote, body = rest[0], rest[1:]
    if quote == "'":
        end = body.find("'")
        return None if end < 0 else (body[:end], body[end + 1 :])
    value: list[str] = []
    j = 0
    while j < len(body):
        c = body[j]
        if c == "\\" and j + 1 < len(body):
            nxt = body[j + 1]
            value.append(_ESCAPES.get(nxt, "\\" + nxt))
            j += 2
            continue
        if c == '"':
            return "".join(value), body[j + 1 :]
        value.append(c)
        j += 1
    return None


def read_dotenv(path: Path, name: str | None = None) -> dict[str, str]:
    """The file's variables, or {} when it does not exist."""
    label = name or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot be read ({exc})") from exc
    return parse_dotenv(text, label)


def resolve_with_sources(
    spec: Spec, env_name: str, secrets: SecretSource | Mapping[str, str] | None = None,
    project_dir: Path | None = None,
) -> dict[str, tuple[str, str]]:
    """``{KEY: (value, source)}`` where source is ``config``, the dotenv file's name, or ``secret``."""
    env = spec.env(env_name)
    project_dir = spec.project_dir if project_dir is None else project_dir
    # [defaults.env] and [environments.X.env] were merged key by key when the spec was loaded.
    out = {k: (v, SOURCE_CONFIG) for k, v in env.env.items()}
    dotenv = dotenv_path(project_dir, env_name)
    out.update({k: (v, dotenv.name) for k, v in read_dotenv(dotenv).items()})
    if secrets is not None:
        values = secrets if isinstance(secrets, Mapping) else secrets.values(env_name)
        out.update({k: (v, SOURCE_SECRET) for k, v in values.items()})
    return out


def resolve_instance_env(
    spec: Spec, env_name: str, secrets: SecretSource | Mapping[str, str] | None = None,
    project_dir: Path | None = None,
) -> dict[str, str]:
    """The variables every instance of ``env_name`` gets (shipyard adds PORT, SHIPYARD_ENV, ... itself)."""
    return {k: v for k, (v, _) in resolve_with_sources(spec, env_name, secrets, project_dir).items()}
