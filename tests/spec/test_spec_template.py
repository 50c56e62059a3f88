from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.template import render_init_template


@pytest.mark.parametrize(("name", "run"), [
    ("svc", "python3 app.py"),
    ("My App!", 'gunicorn -b "0.0.0.0:$PORT" app:app'),
    ("", "./bin/server --flag='x' \\ {brace}"),
    ("ünï", "run\x7fwith\tcontrols and ünïcode"),
])
def test_init_template_is_accepted(write_spec: Callable[..., Path], name: str, run: str) -> None:
    text = render_init_template(name, run)
    write_spec(text)
    spec = load_spec()
    assert spec.app.run == run
    assert spec.app.health.path == "/health"
    assert spec.env_names == ["production", "staging"]
    assert spec.env("production").strategy == "blue-green"
    assert text.count("#") > 20  # commented for people
    assert tomllib.loads(text)["app"]["name"] == spec.app.name


def test_init_template_app_name() -> None:
    assert 'name = "svc"' in render_init_template("svc", "x")
    assert 'name = "My-App"' in render_init_template("My App!", "x")
    assert 'name = "app"' in render_init_template("", "x")
