"""The pure half of `shipyard image build` (engine/kube/dockerfile.py): tags, digests, the generated Dockerfile."""

from __future__ import annotations

import pytest

from shipyard.engine.kube import dockerfile
from shipyard.errors import BadInput


@pytest.mark.parametrize(("pattern", "repo"), [
    ("{app}:{release}", "svc"),
    ("registry.example/shop", "registry.example/shop"),
    ("127.0.0.1:5000/{app}:{release}", "127.0.0.1:5000/svc"),
    ("127.0.0.1:5000/svc", "127.0.0.1:5000/svc"),
    ("ghcr.io/org/{app}:latest", "ghcr.io/org/svc"),
])
def test_repository_drops_the_tag_but_not_a_registry_port(pattern: str, repo: str) -> None:
    assert dockerfile.repository(pattern, "svc") == repo
    assert dockerfile.tag(pattern, "svc", "r1-abc") == f"{repo}:r1-abc"


def test_a_pinned_pattern_cannot_be_built() -> None:
    with pytest.raises(BadInput, match="kubernetes.image"):
        dockerfile.repository("registry/svc@sha256:0123", "svc")


def test_digest_is_the_one_of_the_pushed_repository() -> None:
    digests = ["other.example/svc@sha256:aaa", "127.0.0.1:5000/svc@sha256:bbb"]
    assert dockerfile.digest_for(digests, "127.0.0.1:5000/svc") == "sha256:bbb"
    assert dockerfile.digest_for(digests, "127.0.0.1:5001/svc") is None
    assert dockerfile.pinned("r/svc", "sha256:bbb") == "r/svc@sha256:bbb"


def test_generated_dockerfile_layers_requirements_before_the_tree() -> None:
    text = dockerfile.generated(base_image="python:3.12-slim", run="gunicorn 'app:make()'", port=8000,
                                build=["python3 -m compileall -q ."], requirements=True, release="r1", commit="c0ffee")
    lines = text.splitlines()
    assert lines[1] == "FROM python:3.12-slim"
    order = [lines.index(x) for x in ("COPY requirements.txt ./", "RUN pip install -r requirements.txt", "COPY . .",
                                      "RUN python3 -m compileall -q .")]
    assert order == sorted(order)
    assert "HOST=0.0.0.0 PORT=8000" in text and "EXPOSE 8000" in lines and "USER 65534:65534" in lines
    assert lines[-1] == """CMD ["/bin/sh", "-c", "gunicorn 'app:make()'"]"""
    assert 'dev.shipyard.release="r1"' in text
    bare = dockerfile.generated(base_image="b", run="python3 app.py", port=80, build=[], requirements=False,
                                release="r1", commit="c")
    assert "requirements" not in bare
