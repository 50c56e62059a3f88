"""``diff_config``: a table added or removed whole is one entry, not every leaf it brings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.diff import diff_config
from shipyard.primitives.spec.masking import spec_snapshot


def test_an_added_table_is_one_entry(write_spec: Callable[..., Path], example_toml: str) -> None:
    write_spec(example_toml)
    old = spec_snapshot(load_spec(), "staging")
    write_spec(example_toml + '\n[environments.staging.verify]\nrate = 50\n')
    new = spec_snapshot(load_spec(), "staging")
    assert diff_config(old, new) == ["environment.verify (added)"]
    assert diff_config(new, old) == ["environment.verify (removed)"]


def test_changed_leaves_inside_a_table_are_listed() -> None:
    old = {"t": {"x": 1, "deep": {"a": 1}}, "off": None}
    new = {"t": {"x": 2, "deep": {"a": 1}, "more": {"b": 1}}, "off": {"k": 1, "j": 2}}
    assert diff_config(old, new) == ["off (added)", "t.more (added)", "t.x"]
    # Keys added to a table that was empty are listed; a table becoming a value is a change.
    assert diff_config({"e": {}}, {"e": {"k": 1}}) == ["e.k"]
    assert diff_config({"e": {}}, {"e": 1}) == ["e"]
