from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.errors import ConfigError, NotFound
from shipyard.primitives.spec import EnvSpec, Spec, load_spec
from shipyard.primitives.spec.rollout import CanarySpec
from shipyard.primitives.spec.verify import VerifySpec

WriteSpec = Callable[..., Path]


def errors_of(write_spec: WriteSpec, text: str, name: str = "shipyard.toml") -> ConfigError:
    write_spec(text, name)
    with pytest.raises(ConfigError) as info:
        load_spec()
    return info.value


def test_issue_example_is_accepted_as_written(write_spec: WriteSpec, example_toml: str) -> None:
    path = write_spec(example_toml)
    spec = load_spec()
    assert spec.path == path
    assert spec.project_dir == path.parent
    assert spec.app.name == "svc"
    assert spec.app.run == "python3 app.py"
    assert spec.app.build == ["python3 -m compileall -q ."]
    assert spec.app.shared == ["instance"]
    h = spec.app.health
    assert (h.path, h.interval, h.timeout, h.retries, h.start_period) == ("/health", 1.0, 1.0, 3, 10.0)
    assert spec.app.ready is not None
    r = spec.app.ready
    assert (r.path, r.interval, r.timeout, r.retries, r.start_period) == ("/ready", 10.0, 1.0, 3, 0.0)
    assert (spec.app.stop.signal, spec.app.stop.grace) == ("SIGTERM", 30.0)
    staging = spec.env("staging")
    assert isinstance(staging, EnvSpec)
    assert staging.name == "staging"
    assert staging.port == 8200
    assert staging.replicas == 3  # own value wins over [defaults]
    assert staging.strategy == "blue-green"  # inherited
    assert staging.keep_releases == 5
    assert staging.env == {"GREETING": "hello"}
    assert (staging.max_surge, staging.max_unavailable) == (1, 0)
    assert (staging.drain_timeout, staging.scale_down_delay, staging.deploy_timeout, staging.watch) == (
        30.0, 300.0, 300.0, 3600.0)
    assert staging.canary is None and staging.verify is None and staging.backup is None
    assert staging.url == "http://127.0.0.1:8200"


def test_explicit_path_and_yaml(write_spec: WriteSpec) -> None:
    path = write_spec(
        "app:\n  name: svc\n  run: ./server\n  health: {path: /health, interval: 2s}\n"
        "defaults:\n  replicas: 2\n  env: {A: '1'}\n"
        "environments:\n  staging:\n    port: 8200\n    env: {B: 2}\n",
        "shipyard.yaml",
    )
    spec = load_spec()
    assert spec.path == path
    assert spec.app.health.interval == 2.0
    assert spec.env("staging").env == {"A": "1", "B": "2"}
    assert load_spec(path).env("staging").replicas == 2


def test_toml_preferred_over_yaml(write_spec: WriteSpec, example_toml: str) -> None:
    write_spec("not: [valid", "shipyard.yml")
    write_spec(example_toml)
    assert load_spec().app.name == "svc"


def test_missing_file(write_spec: WriteSpec, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no shipyard.toml in .*shipyard init"):
        load_spec()
    with pytest.raises(ConfigError, match="other.toml: no such file"):
        load_spec(tmp_path / "other.toml")


def test_inheritance_deep_merges_tables(write_spec: WriteSpec, minimal_app: str) -> None:
    write_spec(minimal_app + '''
[defaults]
replicas = 2
drain_timeout = "10s"
[defaults.env]
A = "a"
B = "b"
[defaults.verify]
rate = 50
duration = "30s"
[defaults.canary]
steps = [5, 100]

[environments.staging]
port = 8200
verify = true
[environments.staging.env]
B = "B"
C = 3
D = true

[environments.prod]
port = 8300
replicas = 4
strategy = "canary"
verify = false
canary = { step_duration = "1m" }
''')
    spec = load_spec()
    staging, prod = spec.env("staging"), spec.env("prod")
    assert staging.env == {"A": "a", "B": "B", "C": "3", "D": "true"}
    assert staging.replicas == 2 and staging.drain_timeout == 10.0
    assert staging.verify == VerifySpec(rate=50, duration=30.0)  # `true` keeps the [defaults] table
    assert staging.canary == CanarySpec(steps=[5, 100])
    assert prod.replicas == 4
    assert prod.verify is None  # switched off
    assert prod.canary == CanarySpec(steps=[5, 100], step_duration=60.0)
    assert prod.env == {"A": "a", "B": "b"}


def test_verify_true_without_defaults_means_default_settings(write_spec: WriteSpec, minimal_app: str) -> None:
    write_spec(minimal_app + "[environments.staging]\nport = 8200\nverify = true\n")
    assert load_spec().env("staging").verify == VerifySpec()


def test_canary_strategy_gets_default_canary_settings(write_spec: WriteSpec, minimal_app: str) -> None:
    write_spec(minimal_app + '[environments.staging]\nport = 8200\nstrategy = "canary"\n')
    assert load_spec().env("staging").canary == CanarySpec()


def test_spec_is_frozen(write_spec: WriteSpec, example_toml: str) -> None:
    write_spec(example_toml)
    spec = load_spec()
    with pytest.raises(ValueError):
        setattr(spec.env("staging"), "replicas", 9)  # noqa: B010
    assert isinstance(spec, Spec)


def test_unknown_environment_lists_known_names(write_spec: WriteSpec, example_toml: str) -> None:
    write_spec(example_toml + "[environments.prod]\nport = 8300\n")
    with pytest.raises(NotFound) as info:
        load_spec().env("qa")
    assert str(info.value) == "unknown environment 'qa' (known: prod, staging)"
    assert info.value.exit_code == 2


# (text appended to a valid [app], expected problem line)
ENV_CASES = [
    ("[environments.staging]\nport = 8200\nreplicas = 0\n",
     "environments.staging.replicas: must be at least 1, got 0"),
    ("[environments.staging]\nport = 8200\nreplics = 2\n",
     "environments.staging.replics: unknown key (did you mean 'replicas'?)"),
    ("[environments.staging]\nport = 8200\nreplicas = \"three\"\n",
     "environments.staging.replicas: must be a whole number, got 'three'"),
    ("[environments.staging]\nport = 8200\nreplicas = 2.5\n",
     "environments.staging.replicas: must be a whole number, got 2.5"),
    ("[environments.staging]\nport = 8200\nreplicas = true\n",
     "environments.staging.replicas: must be a whole number, got true"),
    ("[environments.staging]\nport = 8200\nstrategy = \"bluegreen\"\n",
     "environments.staging.strategy: must be one of 'rolling', 'blue-green', 'canary', got 'bluegreen'"),
    ("[environments.staging]\nport = 8200\ndrain_timeout = \"soon\"\n",
     "environments.staging.drain_timeout: expected a duration like '30s', '5m' or '1h', got 'soon'"),
    ("[environments.staging]\nreplicas = 2\n",
     "environments.staging.port: missing required key"),
    ("[environments.staging]\nport = 70000\n",
     "environments.staging.port: must be at most 65535, got 70000"),
    ("[environments.staging]\nport = 8200\n[environments.prod]\nport = 8200\n",
     "environments.prod.port: port 8200 is already used by environment 'staging'"),
    ("[environments.Staging]\nport = 8200\n",
     "environments.Staging: environment names are lowercase identifiers (a-z, 0-9, '-', '_', starting with a "
     "letter), got 'Staging'"),
    ("[environments.staging]\nport = 8200\nenv = { \"BAD-NAME\" = \"x\" }\n",
     "environments.staging.env.BAD-NAME: 'BAD-NAME' is not a valid environment variable name (letters, digits "
     "and '_')"),
    ("[environments.staging]\nport = 8200\nenv = { PORT = \"1\" }\n",
     "environments.staging.env.PORT: 'PORT' is set by shipyard for every instance and cannot be configured"),
    ("[environments.staging]\nport = 8200\nenv = { A = [1] }\n",
     "environments.staging.env.A: must be a string, got a list"),
    ("[environments.staging]\nport = 8200\nreplicas = 2\nmax_unavailable = 2\n",
     "environments.staging.max_unavailable: must be less than replicas (2) so that an instance keeps serving, "
     "got 2"),
    ("[environments.staging]\nport = 8200\nmax_surge = 0\n",
     "environments.staging.max_surge: max_surge and max_unavailable cannot both be 0 (a rolling deploy could "
     "never progress)"),
    ("[environments.staging]\nport = 8200\nverify = { rate = \"fast\" }\n",
     "environments.staging.verify.rate: must be a number, got 'fast'"),
    ("[environments.staging]\nport = 8200\ncanary = { stepz = [1] }\n",
     "environments.staging.canary.stepz: unknown key (did you mean 'steps'?)"),
    ("[environments.staging]\nport = 8200\nverify = 3\n",
     "environments.staging.verify: must be a table, got 3"),
    ("[environments]\nstaging = 3\n", "environments.staging: must be a table, got 3"),
    ("[environments]\n", "environments: define at least one environment, e.g. [environments.staging]"),
    ("", "environments: missing required key (add an [environments.NAME] table, e.g. staging)"),
    ("[enviroments.staging]\nport = 1\n[environments.staging]\nport = 8200\n",
     "enviroments: unknown key (did you mean 'environments'?)"),
    # A bad value in [defaults] is reported once, under defaults.
    ("[defaults]\nreplicas = -1\n[environments.a]\nport = 1\n[environments.b]\nport = 2\n",
     "defaults.replicas: must be at least 1, got -1"),
    ("[defaults]\nkeep_release = 3\n[environments.a]\nport = 1\n",
     "defaults.keep_release: unknown key (did you mean 'keep_releases'?)"),
    ("[defaults]\nport = 8200\n[environments.a]\n[environments.b]\n",
     "defaults.port: port 8200 is already used by environment 'a'"),
    ("[defaults.verify]\nrate = \"x\"\n[environments.a]\nport = 1\nverify = true\n",
     "defaults.verify.rate: must be a number, got 'x'"),
]


@pytest.mark.parametrize(("text", "expected"), ENV_CASES, ids=[c[1].split(":")[0] for c in ENV_CASES])
def test_environment_problems(write_spec: WriteSpec, minimal_app: str, text: str, expected: str) -> None:
    err = errors_of(write_spec, minimal_app + text)
    assert err.message == "shipyard.toml: invalid configuration"
    assert err.problems == [expected]
    assert err.exit_code == 2
    assert str(err) == f"shipyard.toml: invalid configuration\n{expected}"


APP_CASES = [
    ('[app]\nname = "svc"\nrun = 3\n[app.health]\npath = "/h"\n', "app.run: must be a string, got 3"),
    ('[app]\nname = "svc"\nrun = ""\n[app.health]\npath = "/h"\n', "app.run: must not be empty"),
    ('[app]\nname = "svc"\n[app.health]\npath = "/h"\n', "app.run: missing required key (the web command: [app] run or [processes] web)"),
    ('[app]\nname = "s v c"\nrun = "x"\n[app.health]\npath = "/h"\n',
     "app.name: expected letters, digits, '.', '_' or '-' (at most 63), got 's v c'"),
    ('[app]\nname = "svc"\nrun = "x"\n', "app.health: missing required key"),
    ('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "health"\n',
     "app.health.path: must start with '/', got 'health'"),
    ('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\ninterval = "0s"\n',
     "app.health.interval: must be greater than 0, got '0s'"),
    ('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\nretries = 0\n',
     "app.health.retries: must be at least 1, got 0"),
    ('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\ntimout = "1s"\n',
     "app.health.timout: unknown key (did you mean 'timeout'?)"),
    ('[app]\nname = "svc"\nrun = "x"\nbuild = [1]\n[app.health]\npath = "/h"\n',
     "app.build[0]: must be a string, got 1"),
    ('[app]\nname = "svc"\nrun = "x"\nshared = ["../up"]\n[app.health]\npath = "/h"\n',
     "app.shared: shared dirs are paths inside the release (relative, no '..'), got '../up'"),
    ('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\n[app.stop]\nsignal = "SIGNOPE"\n',
     "app.stop.signal: expected a signal name like 'SIGTERM' or 'SIGINT', got 'SIGNOPE'"),
    ('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\n[app.stop]\ngrace = "-1s"\n',
     "app.stop.grace: expected a duration like '30s', '5m' or '1h', got '-1s'"),
    ('app = 3\n', "app: must be a table, got 3"),
]


@pytest.mark.parametrize(("text", "expected"), APP_CASES, ids=[c[1].split(":")[0] for c in APP_CASES])
def test_app_problems(write_spec: WriteSpec, text: str, expected: str) -> None:
    err = errors_of(write_spec, text + "[environments.staging]\nport = 8200\n")
    assert err.problems == [expected]


def test_all_problems_reported_at_once(write_spec: WriteSpec) -> None:
    err = errors_of(write_spec, '[app]\nname = "svc"\nrun = 3\n[app.health]\npath = "/h"\nretries = 0\n'
                    "[environments.staging]\nport = 8200\nreplicas = 0\nreplics = 1\n")
    assert sorted(err.problems) == [
        "app.health.retries: must be at least 1, got 0",
        "app.run: must be a string, got 3",
        "environments.staging.replicas: must be at least 1, got 0",
        "environments.staging.replics: unknown key (did you mean 'replicas'?)",
    ]


def test_stop_signal_is_normalised(write_spec: WriteSpec) -> None:
    write_spec('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\n[app.stop]\nsignal = "int"\n'
               "grace = 5\n[environments.staging]\nport = 8200\n")
    stop = load_spec().app.stop
    assert (stop.signal, stop.grace) == ("SIGINT", 5.0)


def test_bad_toml_names_line_and_column(write_spec: WriteSpec) -> None:
    err = errors_of(write_spec, '[app]\nname = "svc"\nrun "x"\n')
    assert err.message == "shipyard.toml: invalid TOML"
    assert len(err.problems) == 1
    assert err.problems[0].startswith("line 3, column 5: ")
    assert "Traceback" not in str(err)


def test_bad_yaml_names_line_and_column(write_spec: WriteSpec) -> None:
    err = errors_of(write_spec, "app:\n  name: svc\n  run: [x\n", "shipyard.yaml")
    assert err.message == "shipyard.yaml: invalid YAML"
    assert err.problems[0].startswith("line ")


def test_yaml_document_must_be_a_table(write_spec: WriteSpec) -> None:
    err = errors_of(write_spec, "- a\n- b\n", "shipyard.yml")
    assert err.problems == ["the document must be a table, got a list"]


def test_yaml_errors_use_the_same_key_paths(write_spec: WriteSpec) -> None:
    err = errors_of(write_spec, "app: {name: svc, run: x, health: {path: /h}}\n"
                    "environments: {staging: {port: 8200, replicas: 0}}\n", "shipyard.yaml")
    assert err.problems == ["environments.staging.replicas: must be at least 1, got 0"]


def test_not_utf8(write_spec: WriteSpec, tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_bytes(b"\xff\xfe[app]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_spec()
