"""Read shipyard.toml (or shipyard.yaml), merge [defaults] into each environment, validate, resolve.

Every problem found is collected and reported at once as a ``ConfigError`` naming the file, one line per
problem with its key path; a value inherited from ``[defaults]`` is reported under ``defaults.``.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from shipyard.errors import ConfigError
from shipyard.primitives.spec.alerting import AlertSpec, MetricsSpec
from shipyard.primitives.spec.approval import orphan_approval
from shipyard.primitives.spec.control import ControlSpec
from shipyard.primitives.spec.errors import Loc, dotted, problems, show, unknown_key
from shipyard.primitives.spec.faces import ReportsSpec, StatusPageSpec, faces_problems
from shipyard.primitives.spec.logs import LogsSpec
from shipyard.primitives.spec.models import AppSpec, EnvSettings, EnvSpec, Spec, check_env_name
from shipyard.primitives.spec.notifications import NotificationsSpec
from shipyard.primitives.spec.pipeline import HooksSpec
from shipyard.primitives.spec.processes import ProcessesFile, check_jobs, check_process_names, process_types
from shipyard.primitives.spec.rollout import CanarySpec

SPEC_FILES = ("shipyard.toml", "shipyard.yaml", "shipyard.yml")
TOP_LEVEL = ("app", "hooks", "defaults", "environments", "metrics", "alerts", "control", "notifications", "logs",
             "processes", "jobs", "status_page", "reports")
TOGGLES = ("canary", "rollback", "verify")
# Nesting of tables and lists: the deepest key shipyard reads is 7 levels down
# (environments.prod.canary.analysis.NAME.prometheus[0]); deeper documents are refused before anything
# recursive (the merge, pydantic) walks them, and a parser that recurses too deep says the same.
MAX_DEPTH = 32
# A spec file is a few KiB; this bounds what the parser and the validation have to look at.
MAX_SPEC_BYTES = 1024 * 1024
MAX_NODES = 100_000

Problem = tuple[Loc, str]


def find_spec_file(directory: Path) -> Path | None:
    for name in SPEC_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_spec(path: Path | None = None) -> Spec:
    """Load and validate the spec at ``path`` (default: shipyard.toml/.yaml/.yml in the cwd)."""
    if path is None:
        found = find_spec_file(Path.cwd())
        if found is None:
            raise ConfigError(f"no shipyard.toml in {Path.cwd()} (run 'shipyard init' to write one)")
        path = found
    path = Path(path).absolute()
    return parse_spec(read_document(path), path)


def display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_document(path: Path) -> dict[str, Any]:
    name = display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{name}: cannot be read ({exc.strerror})") from exc
    return parse_document(text, name, is_yaml=path.suffix in (".yaml", ".yml"))


def parse_document(text: str, name: str, *, is_yaml: bool = False) -> dict[str, Any]:
    """Parse TOML (or YAML) text into a table; documents too big or nested too deeply are refused."""
    if len(text) > MAX_SPEC_BYTES:
        raise ConfigError(f"{name}: invalid configuration", problems=[f"the file is larger than {MAX_SPEC_BYTES // 1024} KiB"])
    try:
        data = _parse_yaml(text, name) if is_yaml else _parse_toml(text, name)
    except RecursionError:
        raise ConfigError(f"{name}: invalid configuration", problems=[_too_deep()]) from None
    except ValueError as exc:  # not a syntax error: e.g. an integer of more than 4300 digits
        raise ConfigError(f"{name}: invalid configuration", problems=[str(exc).split(";")[0]]) from None
    too_big = _too_big(data)
    if too_big:
        raise ConfigError(f"{name}: invalid configuration", problems=[too_big])
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: invalid configuration", problems=[f"the document must be a table, got {show(data)}"])
    return data


def _too_deep() -> str:
    return f"tables and lists are nested more than {MAX_DEPTH} levels deep"


def _too_big(doc: Any) -> str | None:
    """Why ``doc`` is refused: nested deeper than ``MAX_DEPTH``, or more than ``MAX_NODES`` values (YAML
    aliases can make a short file expand into billions); walked without recursion, stopping early."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return f"the document holds more than {MAX_NODES} values"
        if isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                return _too_deep()
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return None


_TOML_POS = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)$")


def _parse_toml(text: str, name: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.match(msg)
        line = f"line {m.group(2)}, column {m.group(3)}: {m.group(1)}" if m else msg
        raise ConfigError(f"{name}: invalid TOML", problems=[line]) from exc


def _parse_yaml(text: str, name: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{name}: invalid YAML", problems=[f"{where}{problem}"]) from exc


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; tables merge key by key, anything else is replaced.

    ``true`` over a table keeps the table (``verify = true`` with ``[defaults.verify]`` set means "on").
    """
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = deep_merge(old, value)
        elif isinstance(old, dict) and value is True:
            continue
        else:
            out[key] = copy.deepcopy(value)
    return out


def _depth(doc: Any, loc: Loc) -> int:
    """How many leading parts of ``loc`` exist in ``doc``."""
    n = 0
    for part in loc:
        in_table = isinstance(doc, dict) and part in doc
        in_list = isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc)
        if not (in_table or in_list):
            break
        doc = doc[part]
        n += 1
    return n


def _where(loc: Loc, env: str, own: Mapping[str, Any], defaults: Mapping[str, Any]) -> Loc:
    """The full key path of a problem: under ``defaults`` when that is where the value came from."""
    if _depth(defaults, loc) > _depth(own, loc):
        return ("defaults", *loc)
    return ("environments", env, *loc)


def _validate(model: type[BaseModel], data: Any, prefix: Loc) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems(exc, model, data, prefix)


def parse_spec(data: Mapping[str, Any], path: Path) -> Spec:
    """Validate a parsed document; raise ``ConfigError`` listing every problem."""
    found: list[Problem] = []
    for key in data:
        if key not in TOP_LEVEL:
            found.append(((str(key),), unknown_key(str(key), TOP_LEVEL)))

    app: AppSpec | None = None
    if "app" not in data:
        found.append((("app",), "missing required key (add an [app] table with name and run)"))
    else:
        app, errs = _validate(AppSpec, data["app"], ("app",))
        found += errs

    hooks = HooksSpec()
    if "hooks" in data:
        parsed, errs = _validate(HooksSpec, data["hooks"], ("hooks",))
        found += errs
        hooks = parsed if parsed is not None else hooks

    logs = LogsSpec()
    if "logs" in data:
        parsed_logs, errs = _validate(LogsSpec, data["logs"], ("logs",))
        found += errs
        logs = parsed_logs if parsed_logs is not None else logs

    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        found.append((("defaults",), f"must be a table, got {show(defaults)}"))
        defaults = {}

    environments: dict[str, EnvSpec] = {}
    raw_envs = data.get("environments")
    if raw_envs is None:
        found.append((("environments",), "missing required key (add an [environments.NAME] table, e.g. staging)"))
    elif not isinstance(raw_envs, dict):
        found.append((("environments",), f"must be a table, got {show(raw_envs)}"))
    elif not raw_envs:
        found.append((("environments",), "define at least one environment, e.g. [environments.staging]"))
    else:
        for name, own in raw_envs.items():
            orphan = orphan_approval(str(name), own, defaults)
            if orphan is not None:
                found.append((("environments", str(name), "approval"), orphan))
                continue
            env, errs = _resolve_env(str(name), own, defaults)
            found += errs
            if env is not None:
                environments[env.name] = env
        found += _check_ports(environments, raw_envs)
        found += _check_promotions(environments)

    metrics, alerts, errs = _alerting(data, environments if raw_envs else None)
    found += errs
    control, errs = _validate(ControlSpec, data.get("control", {}), ("control",))
    found += errs
    notifications, errs = _notifications(data)
    found += errs
    extra, errs = _processes_and_jobs(data, app, environments)
    found += errs
    status_page, errs = (_validate(StatusPageSpec, data["status_page"], ("status_page",))
                         if "status_page" in data else (None, []))
    found += errs + faces_problems(status_page, environments if raw_envs else None)
    reports, errs = _validate(ReportsSpec, data.get("reports", {}), ("reports",))
    found += errs

    if found:
        lines = list(dict.fromkeys(f"{dotted(loc)}: {text}" for loc, text in found))
        raise ConfigError(f"{display_name(path)}: invalid configuration", problems=lines)
    assert app is not None
    return Spec(app=app, environments=environments, path=path, hooks=hooks, metrics=metrics, alerts=alerts,
                control=control, notifications=notifications, logs=logs, status_page=status_page,
                reports=reports, **extra)


def _processes_and_jobs(data: Mapping[str, Any], app: AppSpec | None, envs: Mapping[str, EnvSpec]
                        ) -> tuple[dict[str, Any], list[Problem]]:
    """``[processes]`` and ``[jobs]`` (spec/processes.py), and the process types environments name."""
    found: list[Problem] = []
    # Apart, so that a bad job does not hide the environments' process-type problems (and back).
    procs, errs = _validate(ProcessesFile, {"processes": data.get("processes", {})}, ())
    found += errs
    jobs, errs = _validate(ProcessesFile, {"jobs": data.get("jobs", {})}, ())
    found += errs
    if procs is None:
        return {}, found
    parsed = procs
    if app is not None and app.run is None and "web" not in parsed.processes:
        found.append((("app", "run"), "missing required key (the web command: [app] run or [processes] web)"))
    elif app is not None and app.run is not None and "web" in parsed.processes:
        found.append((("processes", "web"), "[app] run already gives the web command: keep one of the two"))
    types = process_types(parsed.processes, app.run if app else None)
    for name, env in envs.items():
        found += check_process_names(name, types, env.processes, env.resources)
    if jobs is None:
        return {}, found
    found += check_jobs(jobs.jobs, envs)
    return {"processes": parsed.processes, "jobs": jobs.jobs}, found


def _alerting(data: Mapping[str, Any], envs: Mapping[str, EnvSpec] | None
              ) -> tuple[MetricsSpec, tuple[AlertSpec, ...], list[Problem]]:
    """``[metrics]`` and ``[[alerts]]`` (see spec/alerting.py); ``env`` must name an environment."""
    metrics, found = _validate(MetricsSpec, data.get("metrics", {}), ("metrics",))
    raw = data.get("alerts", [])
    if not isinstance(raw, list):
        return metrics or MetricsSpec(), (), [*found, (("alerts",), f"must be a list of tables ([[alerts]]), got {show(raw)}")]
    alerts: list[AlertSpec] = []
    seen: set[tuple[str, str | None]] = set()
    for i, item in enumerate(raw):
        rule, errs = _validate(AlertSpec, item, ("alerts", i))
        found += errs
        if rule is None:
            continue
        if rule.env is not None and envs is not None and rule.env not in envs:
            found.append((("alerts", i, "env"), f"unknown environment {rule.env!r} (known: {', '.join(sorted(envs))})"))
        elif (rule.name, rule.env) in seen:
            found.append((("alerts", i, "name"), f"a rule named {rule.name!r} is already defined for "
                          f"{'environment ' + repr(rule.env) if rule.env else 'every environment'}"))
        if rule.parsed.promql is not None and metrics is not None and metrics.prometheus is None:
            found.append((("alerts", i, "expr"), "a 'promql:' expression needs [metrics] prometheus (the URL of "
                          "the Prometheus that evaluates it)"))
        seen.add((rule.name, rule.env))
        alerts.append(rule)
    return metrics or MetricsSpec(), tuple(alerts), found


def _notifications(data: Mapping[str, Any]) -> tuple[NotificationsSpec, list[Problem]]:
    """``[notifications]`` (spec/notifications.py): each receiver's kind-specific keys, routes' receivers."""
    parsed, found = _validate(NotificationsSpec, data.get("notifications", {}), ("notifications",))
    if parsed is None:
        return NotificationsSpec(), found
    return parsed, [(("notifications", *loc), text) for loc, text in parsed.problems()]


def _resolve_env(name: str, own: Any, defaults: dict[str, Any]) -> tuple[EnvSpec | None, list[Problem]]:
    try:
        check_env_name(name)
    except ValueError as exc:
        return None, [(("environments", name), str(exc))]
    if not isinstance(own, dict):
        return None, [(("environments", name), f"must be a table, got {show(own)}")]
    merged = deep_merge(defaults, own)
    for key in TOGGLES:
        # `verify = true` means "on, with the default settings"; `false` switches off (also one from [defaults]).
        if merged.get(key) is True:
            merged[key] = {}
        elif merged.get(key) is False:
            merged[key] = None
    settings, errs = _validate(EnvSettings, merged, ())
    if settings is None:
        return None, [(_where(loc, name, own, defaults), text) for loc, text in errs]

    found: list[Problem] = []

    def problem(key: str, text: str) -> None:
        found.append((_where((key,), name, own, defaults), text))

    if settings.max_surge == 0 and settings.max_unavailable == 0:
        problem("max_surge", "max_surge and max_unavailable cannot both be 0 (a rolling deploy could never progress)")
    if settings.max_unavailable >= settings.replicas:
        problem(
            "max_unavailable",
            f"must be less than replicas ({settings.replicas}) so that an instance keeps serving, "
            f"got {settings.max_unavailable}",
        )
    if found:
        return None, found

    fields = {key: getattr(settings, key) for key in EnvSettings.model_fields}
    if fields["strategy"] == "canary" and fields["canary"] is None:
        fields["canary"] = CanarySpec()
    return EnvSpec.model_validate({**fields, "name": name}), []


def _check_promotions(envs: Mapping[str, EnvSpec]) -> list[Problem]:
    found: list[Problem] = []
    for name, env in envs.items():
        if env.promotion is None:
            continue
        source = env.promotion.from_
        if source == name:
            found.append((("environments", name, "promotion", "from"), "an environment cannot promote from itself"))
        elif source not in envs:
            known = ", ".join(sorted(envs))
            found.append((("environments", name, "promotion", "from"),
                          f"unknown environment {source!r} (known: {known})"))
    return found


def _check_ports(envs: Mapping[str, EnvSpec], raw_envs: Mapping[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    owner: dict[int, str] = {}
    for name, env in envs.items():
        if env.port in owner:
            own = raw_envs.get(name, {})
            loc: Loc = ("environments", name, "port") if "port" in own else ("defaults", "port")
            found.append((loc, f"port {env.port} is already used by environment {owner[env.port]!r}"))
        else:
            owner[env.port] = name
    for name, env in envs.items():  # a redirect_http listener takes a port too
        if env.router.redirect_http:
            port = env.router.http_port
            if port in owner and owner[port] != name or port == env.port:
                found.append((("environments", name, "router", "http_port"),
                              f"port {port} is already used by environment {owner.get(port, name)!r}"))
            else:
                owner[port] = name
    return found
