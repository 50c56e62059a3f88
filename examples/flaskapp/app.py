"""A small Flask app deployed by shipyard under gunicorn: notes kept in SQLite.

The database lives at ``instance/app.db``; ``instance`` is a shipyard ``shared`` dir, so the data
outlives every release (deploys and rollbacks swap code, never data).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue


def read_version() -> str:
    """env APP_VERSION, else a VERSION file next to this file, else "dev"."""
    if os.environ.get("APP_VERSION"):
        return os.environ["APP_VERSION"]
    try:
        return Path(__file__).with_name("VERSION").read_text(encoding="utf-8").strip() or "dev"
    except OSError:
        return "dev"


app = Flask(__name__)
VERSION = read_version()
RELEASE = os.environ.get("SHIPYARD_RELEASE", "")
DB_PATH = Path(app.instance_path) / "app.db"
SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, version TEXT NOT NULL)"


def connect() -> sqlite3.Connection:
    DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    # Several gunicorn workers (and, during a deploy, two releases) share the file: WAL + a busy timeout.
    conn = sqlite3.connect(DB_PATH, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    return conn


def db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = connect()
    conn: sqlite3.Connection = g.db
    return conn


@app.teardown_appcontext
def close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


@app.after_request
def stamp(response: Response) -> Response:
    response.headers["X-App-Version"] = VERSION
    response.headers["X-Shipyard-Release"] = RELEASE
    return response


@app.get("/health")
def health() -> ResponseReturnValue:
    return jsonify(status="ok", version=VERSION, release=RELEASE)


@app.get("/ready")
def ready() -> ResponseReturnValue:
    db().execute("SELECT 1").fetchone()  # ready means the database answers
    return jsonify(ready=True, version=VERSION, release=RELEASE)


@app.post("/notes")
def add_note() -> ResponseReturnValue:
    payload = request.get_json(silent=True) or {}
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        return jsonify(error='send JSON {"text": "..."}'), 400
    conn = db()
    with conn:
        cur = conn.execute("INSERT INTO notes (text, version) VALUES (?, ?)", (text, VERSION))
    return jsonify(id=cur.lastrowid, text=text, version=VERSION), 201


@app.get("/notes")
def list_notes() -> ResponseReturnValue:
    rows = db().execute("SELECT id, text, version FROM notes ORDER BY id").fetchall()
    return jsonify(version=VERSION, release=RELEASE, notes=[{"id": i, "text": t, "version": v} for i, t, v in rows])
