from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.primitives.spec.errors import dotted, known_keys, problems


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: int | str = 1
    mode: Literal["a", "b"] = "a"


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="x", min_length=1)
    items: list[int | str] = []
    inner: Inner | None = None
    by_name: dict[str, Inner] = {}
    flag: bool = False
    ratio: float = Field(default=0.5, lt=1)


def lines(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(data)
    return [f"{dotted(loc)}: {text}" for loc, text in problems(info.value, Outer, data)]


def test_union_members_are_one_problem_without_tags() -> None:
    assert lines({"items": [1, [2]]}) == ["items[1]: must be a whole number, got a list or must be a string, got a list"]
    assert lines({"inner": {"threshold": None}}) == [
        "inner.threshold: must be a whole number, got nothing or must be a string, got nothing"
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": ""}, "name: must not be empty"),
        ({"flag": "maybe"}, "flag: must be true or false, got 'maybe'"),
        ({"ratio": 2}, "ratio: must be less than 1, got 2"),
        ({"ratio": "x"}, "ratio: must be a number, got 'x'"),
        ({"inner": {"mode": "c"}}, "inner.mode: must be one of 'a', 'b', got 'c'"),
        ({"inner": "x"}, "inner: must be a table, got 'x'"),
        ({"items": "x"}, "items: must be a list, got 'x'"),
        ({"by_name": {"k": {"mood": "a"}}}, "by_name.k.mood: unknown key (did you mean 'mode'?)"),
        ({"inner": {"zzz": 1}}, "inner.zzz: unknown key"),
    ],
)
def test_phrases(data: dict[str, Any], expected: str) -> None:
    assert lines(data) == [expected]


def test_known_keys_walks_models_dicts_and_optionals() -> None:
    assert known_keys(Outer, ()) == ["name", "items", "inner", "by_name", "flag", "ratio"]
    assert known_keys(Outer, ("inner",)) == ["threshold", "mode"]
    assert known_keys(Outer, ("by_name", "any")) == ["threshold", "mode"]
    assert known_keys(Outer, ("name",)) == []


def test_dotted() -> None:
    assert dotted(("a", "b", 0, "c")) == "a.b[0].c"
    assert dotted(("env", "X", "[key]")) == "env.X"
