"""The router process loads only the spec modules it reads: the rest of shipyard.toml's pydantic models
(~3 MB of RSS, docs/router.md) stay out of it, while the package's names still load on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_router_does_not_build_every_spec_model() -> None:
    code = ("import json, sys, shipyard.router.__main__; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shipyard.primitives.spec.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    assert "shipyard.primitives.spec.router" in loaded
    assert "shipyard.primitives.spec.models" not in loaded
    assert "shipyard.primitives.spec.loading" not in loaded


def test_spec_names_load_on_first_use() -> None:
    import shipyard.primitives.spec as spec
    from shipyard.primitives.spec import Spec, load_spec
    from shipyard.primitives.spec.loading import load_spec as direct
    from shipyard.primitives.spec.models import Spec as model

    assert load_spec is direct and Spec is model
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        spec.nope  # noqa: B018
