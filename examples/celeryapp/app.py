"""The web process of the Celery example: POST /tasks/<id>?seconds=S[&until_shutdown=1] queues a task;
GET /health."""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from tasks import record

app = Flask(__name__)


@app.get("/health")
def health():  # type: ignore[no-untyped-def]
    return jsonify(status="ok", release=os.environ.get("SHIPYARD_RELEASE", "-"))


@app.post("/tasks/<task_id>")
def queue(task_id: str):  # type: ignore[no-untyped-def]
    record.delay(task_id, float(request.args.get("seconds", "0")), request.args.get("until_shutdown") == "1")
    return jsonify(queued=task_id), 202


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
