"""`app.build_cache`: accepted as documented, bad rules refused with their key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.errors import ConfigError
from shipyard.primitives.spec import load_spec

WriteSpec = Callable[..., Path]
HEAD = '[app]\nname = "svc"\nrun = "x"\n'
TAIL = '[app.health]\npath = "/h"\n[environments.staging]\nport = 8200\n'


def test_build_cache_as_documented(write_spec: WriteSpec) -> None:
    write_spec(HEAD + 'build_cache = [{ path = ".venv", key = ["requirements.txt", "constraints.txt"] },'
               ' { path = "node_modules", key = "package-lock.json" }]\n' + TAIL)
    rules = load_spec().app.build_cache
    assert [(r.path, r.key) for r in rules] == [(".venv", ["requirements.txt", "constraints.txt"]),
                                                ("node_modules", ["package-lock.json"])]


@pytest.mark.parametrize(("rule", "expected"), [
    ('{ path = "../venv", key = ["r.txt"] }',
     "app.build_cache[0].path: must be a path inside the release (relative, no '..'), got '../venv'"),
    ('{ path = ".venv", key = [] }', "app.build_cache[0].key: must not be empty"),
    ('{ path = ".venv", key = ["/etc/passwd"] }',
     "app.build_cache[0].key[0]: must be a path inside the release (relative, no '..'), got '/etc/passwd'"),
    ('{ path = ".venv", keys = ["r.txt"] }', "app.build_cache[0].keys: unknown key (did you mean 'key'?)"),
])
def test_bad_build_cache_rules(write_spec: WriteSpec, rule: str, expected: str) -> None:
    write_spec(HEAD + f"build_cache = [{rule}]\n" + TAIL)
    with pytest.raises(ConfigError) as info:
        load_spec()
    assert expected in info.value.problems
