"""Secrets changed while the control plane is down are audited: the CLI's offline rows (names only) wait in
.shipyard/audit-pending.jsonl (0600) and move into the audit table when the control plane starts."""

from __future__ import annotations

import stat
from pathlib import Path

from shipyard.control.pendingaudit import FILE, import_pending, record_offline
from shipyard.primitives.store import open_store


def test_offline_rows_are_imported_once_and_torn_lines_skipped(tmp_path: Path) -> None:
    state = tmp_path / ".shipyard"
    state.mkdir()
    record_offline(state, 100.0, "local (alice)", "secrets_set", "prod", "API_KEY", {"names": ["API_KEY"]})
    record_offline(state, 101.0, "local (alice)", "secrets_unset", "prod", "OLD", {"names": ["OLD"]})
    pending = state / FILE
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    with open(pending, "a") as fh:
        fh.write('{"at": 102, "performer": "x", "act')  # a torn write: skipped, not fatal
    store = open_store(None, state)
    assert import_pending(state, store) == 2
    assert not pending.exists()
    rows = store.list_audit(env="prod")
    got = sorted((r.action, r.performer, r.target) for r in rows)
    assert got == [("secrets_set", "local (alice)", "API_KEY"), ("secrets_unset", "local (alice)", "OLD")]
    assert all((r.detail or {}).get("offline") is True for r in rows)
    assert import_pending(state, store) == 0  # nothing twice
