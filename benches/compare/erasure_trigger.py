#!/usr/bin/env python3
"""What the erasure trigger of SQLite schema version 8 costs a batched outbox drain, in CPU
instructions (callgrind), which do not swing with the machine's load as wall-clock times do.

A Python copy of the outbox (the store's columns and queue indexes) drains 20,000 jobs: claims
of 500, then their results in two batched `UPDATE OR IGNORE ... FROM (VALUES ...)` of 250 in one
transaction, as the store writes them. Each variant runs twice under `valgrind --tool=callgrind`,
once claiming only and once also writing the results, so the difference is the results' cost:

- `none`: no trigger;
- `outcome`: the trigger as schema version 8 defines it (read from `schema.rs`), on
  `UPDATE OF outcome`;
- `state`: the same trigger on `UPDATE OF state`, which claims also set.

    python3 benches/compare/erasure_trigger.py        # needs valgrind

`PYTHONHASHSEED=0` makes the counts repeat exactly from run to run. `--variant V --mode M` runs
one drain without valgrind (what the driver runs under it). Nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[2] / "crates/mia-store/src/sqlite/schema.rs"
JOBS = 20_000
CLAIM = 500
HALF = 250


def trigger_sql(on: str) -> str:
    """Schema version 8's trigger, firing on `UPDATE OF <on>`."""
    v8 = re.search(r'const V8: &str = r#"(.*?)"#;', SCHEMA.read_text(), re.S).group(1)
    trigger = re.search(r"CREATE TRIGGER .*?END;", v8, re.S).group(0)
    return trigger.replace("UPDATE OF outcome", f"UPDATE OF {on}")


def drain(variant: str, mode: str, path: str) -> None:
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("""
        PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY;
        CREATE TABLE outbox (key TEXT PRIMARY KEY NOT NULL, campaign TEXT NOT NULL,
            contact TEXT NOT NULL, state TEXT NOT NULL, due_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL, claim_token INTEGER NOT NULL, lease_until INTEGER,
            message_id INTEGER, outcome TEXT, updated_at INTEGER NOT NULL,
            erased_from TEXT) STRICT;
        CREATE INDEX outbox_pending ON outbox (due_at, key) WHERE state = 'pending';
        CREATE INDEX outbox_leases ON outbox (lease_until) WHERE state = 'claimed';
        CREATE INDEX outbox_by_contact ON outbox (contact);
        CREATE TABLE events (id ANY NOT NULL, contact TEXT NOT NULL, campaign TEXT) STRICT;
        CREATE UNIQUE INDEX events_key ON events (contact, id);
    """)
    if variant != "none":
        db.executescript(trigger_sql(variant))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO outbox VALUES (?, 'spring', ?, 'pending', ?, 0, 0, NULL, NULL, NULL, 0, NULL)",
        ((f"k{i:08d}", f"c{i}", i) for i in range(JOBS)),
    )
    db.execute("COMMIT")
    claim = (
        "UPDATE outbox SET state = 'claimed', claim_token = claim_token + 1, lease_until = 99 "
        "WHERE key IN (SELECT key FROM outbox WHERE state = 'pending' "
        f"ORDER BY due_at, key LIMIT {CLAIM})"
    )
    update = (
        "WITH u (key, claim_token, state, message_id, outcome) AS (VALUES "
        + ", ".join(["(?, ?, ?, ?, ?)"] * HALF)
        + ") UPDATE OR IGNORE outbox SET state = u.state, lease_until = NULL, "
        "message_id = u.message_id, outcome = u.outcome FROM u WHERE outbox.key = u.key "
        "AND outbox.state = 'claimed' AND outbox.claim_token = u.claim_token"
    )
    rows = [
        [v for i in range(start, start + HALF) for v in (f"k{i:08d}", 1, "sent", i, None)]
        for start in range(0, JOBS, HALF)
    ]
    for b in range(JOBS // CLAIM):
        db.execute("BEGIN")
        db.execute(claim)
        db.execute("COMMIT")
        if mode == "claims":
            continue
        db.execute("BEGIN")
        for half in rows[2 * b : 2 * b + 2]:
            before = db.total_changes
            db.execute(update, half)
            assert db.total_changes - before == HALF, "every result is written"
        db.execute("COMMIT")


def instructions(variant: str, mode: str) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--variant", variant, "--mode", mode],
        capture_output=True, text=True, env=env, check=True,
    )
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["none", "outcome", "state"])
    parser.add_argument("--mode", choices=["claims", "drain"])
    args = parser.parse_args()
    if args.variant:
        with tempfile.TemporaryDirectory() as dir_:
            drain(args.variant, args.mode or "drain", os.path.join(dir_, "outbox.db"))
        return
    base = {}
    for variant in ["none", "outcome", "state"]:
        claims = instructions(variant, "claims")
        results = instructions(variant, "drain") - claims
        base.setdefault("claims", claims)
        base.setdefault("results", results)
        print(
            f"{variant:8} claims {claims / 1e6:8.1f}M ({claims / base['claims'] - 1:+.1%})"
            f"  results {results / 1e6:8.1f}M ({results / base['results'] - 1:+.1%})"
        )


if __name__ == "__main__":
    main()
