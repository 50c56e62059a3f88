"""A minimal FastAPI service deployed by shipyard under uvicorn (the build cache's benchmark subject)."""

from __future__ import annotations

import os

from fastapi import FastAPI

app = FastAPI()
RELEASE = os.environ.get("SHIPYARD_RELEASE", "")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "release": RELEASE}
