"""Pydantic validation errors → one short line per problem, with the dotted key path.

``environments.staging.replicas: must be at least 1, got 0``
``environments.staging.replics: unknown key (did you mean 'replicas'?)``
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]


def show(value: Any) -> str:
    """A config value as a user wrote it (TOML-ish), short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _expected(ctx: dict[str, Any]) -> str:
    return str(ctx.get("expected", "")).replace(" or ", ", ")


def _got(e: ErrorDetails) -> str:
    return f", got {show(e.get('input'))}"


# Pydantic error types → short phrases. Anything not listed falls back to pydantic's own message.
_PHRASES: dict[str, Callable[[ErrorDetails, dict[str, Any]], str]] = {
    "missing": lambda e, c: "missing required key",
    "int_type": lambda e, c: "must be a whole number" + _got(e),
    "int_parsing": lambda e, c: "must be a whole number" + _got(e),
    "int_from_float": lambda e, c: "must be a whole number" + _got(e),
    "float_type": lambda e, c: "must be a number" + _got(e),
    "float_parsing": lambda e, c: "must be a number" + _got(e),
    "finite_number": lambda e, c: "must be a finite number" + _got(e),
    "string_type": lambda e, c: "must be a string" + _got(e),
    "bool_type": lambda e, c: "must be true or false" + _got(e),
    "bool_parsing": lambda e, c: "must be true or false" + _got(e),
    "list_type": lambda e, c: "must be a list" + _got(e),
    "dict_type": lambda e, c: "must be a table" + _got(e),
    "model_type": lambda e, c: "must be a table" + _got(e),
    "model_attributes_type": lambda e, c: "must be a table" + _got(e),
    "greater_than_equal": lambda e, c: f"must be at least {_num(c.get('ge'))}" + _got(e),
    "greater_than": lambda e, c: f"must be greater than {_num(c.get('gt'))}" + _got(e),
    "less_than_equal": lambda e, c: f"must be at most {_num(c.get('le'))}" + _got(e),
    "less_than": lambda e, c: f"must be less than {_num(c.get('lt'))}" + _got(e),
    "literal_error": lambda e, c: f"must be one of {_expected(c)}" + _got(e),
    "enum": lambda e, c: f"must be one of {_expected(c)}" + _got(e),
    "string_too_short": lambda e, c: (
        "must not be empty" if c.get("min_length") == 1 else f"must be at least {c.get('min_length')} characters"
    ),
    "string_too_long": lambda e, c: f"must be at most {c.get('max_length')} characters",
    "too_short": lambda e, c: (
        "must not be empty" if c.get("min_length") == 1 else f"must have at least {c.get('min_length')} items"
    ),
    "too_long": lambda e, c: f"must have at most {c.get('max_length')} items",
    "string_pattern_mismatch": lambda e, c: f"must match {c.get('pattern')}" + _got(e),
    "value_error": lambda e, c: str(c.get("error", e["msg"])),
    "assertion_error": lambda e, c: str(c.get("error", e["msg"])),
    "frozen_instance": lambda e, c: "cannot be changed",
}


def dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key; the key itself is already in loc
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _unwrap(tp: Any) -> Any:
    """Strip Annotated / Optional down to the type that holds the next key."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = next((a for a in models if isinstance(a, type) and issubclass(a, BaseModel)), models[0])
        else:
            return tp


def known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed in the table at ``loc`` (walking models, dicts and lists), or [] if not a model."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def unknown_key(key: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def describe(err: ErrorDetails, model: type[BaseModel]) -> tuple[Loc, str]:
    """(key path, phrase) for one pydantic error found while validating ``model``."""
    loc: Loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        return loc, unknown_key(str(loc[-1]), known_keys(model, loc[:-1]))
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    phrase = _PHRASES.get(err["type"])
    return loc, phrase(err, ctx) if phrase else err["msg"]


def _as_written(loc: Loc, data: Any, missing: bool) -> Loc:
    """``loc`` with pydantic's union-member tags (``'int'``, ``'function-after[...]'``) removed.

    A tag is a segment that names nothing in the document — except the last segment of a missing key.
    """
    out: list[int | str] = []
    doc = data
    for i, part in enumerate(loc):
        in_table = isinstance(doc, dict) and part in doc
        in_list = isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc)
        if in_table or in_list:
            doc = doc[part]
        elif not (missing and i == len(loc) - 1):
            continue
        out.append(part)
    return tuple(out)


def problems(exc: ValidationError, model: type[BaseModel], data: Any = None, prefix: Loc = ()) -> list[tuple[Loc, str]]:
    """One (key path, phrase) per problem; a value failing every member of a union is one problem."""
    grouped: dict[Loc, list[str]] = {}
    for err in exc.errors():
        loc, text = describe(err, model)
        if data is not None:
            loc = _as_written(loc, data, err["type"] == "missing")
        texts = grouped.setdefault((*prefix, *loc), [])
        if text not in texts:
            texts.append(text)
    return [(loc, " or ".join(texts)) for loc, texts in grouped.items()]
