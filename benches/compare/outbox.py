#!/usr/bin/env python3
"""The outbox benches of mia against the reference points of issue #9, on this machine.

The issue states its floors against job queues measured on "this kind of machine"; machines of
one kind differ by two times and more. This script measures the references here, in the same
minutes as mia's own benches, so that a figure can be read against them:

- a plain SQLite WAL loop (Python's `sqlite3`, `synchronous=FULL`): one narrow table with an
  integer key and one partial index, claim then complete, one job at a time and 500 at a time;
- a plain Postgres `FOR UPDATE SKIP LOCKED` loop (`pgbench`, one and four clients): one job at
  a time and 500 at a time, every commit flushed;
- graphile-worker (npm; `--graphile`), one process with 24 concurrent jobs, plain and batched
  (`localQueue` of 500, completions batched), as its own performance page configures it;
- mia: `cargo bench -p mia-store` (`sqlite.outbox.full`, `postgres.outbox`), whose figures
  are read off criterion's output.

    python3 benches/compare/outbox.py                 # references and mia
    python3 benches/compare/outbox.py --no-mia        # references only (a minute)
    python3 benches/compare/outbox.py --graphile      # also graphile-worker (npm install)

Postgres comes from `MIA_TEST_POSTGRES_URL` (default: the local `test` database); each
reference works in a schema of its own and drops it. Only the standard library, `pgbench` and,
for `--graphile`, Node.js and npm are needed. Nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PG_URL = os.environ.get("MIA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
BATCH = 500
GRAPHILE = "graphile-worker@0.17.2"  # the last release that runs on Node.js 20


def sqlite_loop(jobs: int, batch: int) -> float:
    """Jobs/s of the plain SQLite loop: claim `batch` (one transaction), complete them (one
    transaction), until the table is drained; every commit flushed."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "plain.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, "
            "due_at INTEGER NOT NULL, lease INTEGER, payload TEXT)"
        )
        db.execute("CREATE INDEX jobs_due ON jobs (due_at, id) WHERE state = 'pending'")
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO jobs (state, due_at, payload) VALUES ('pending', ?, ?)",
            ((i, "x" * 40) for i in range(jobs)),
        )
        db.execute("COMMIT")
        start, done = time.perf_counter(), 0
        while True:
            db.execute("BEGIN IMMEDIATE")
            ids = [
                row[0]
                for row in db.execute(
                    "UPDATE jobs SET state = 'claimed', lease = 1 WHERE id IN (SELECT id FROM "
                    "jobs WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?) "
                    "RETURNING id",
                    (jobs, batch),
                )
            ]
            db.execute("COMMIT")
            if not ids:
                break
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "UPDATE jobs SET state = 'done', lease = NULL WHERE id = ? AND state = 'claimed'",
                ((i,) for i in ids),
            )
            db.execute("COMMIT")
            done += len(ids)
        elapsed = time.perf_counter() - start
        db.close()
    assert done == jobs, (done, jobs)
    return done / elapsed


def psql(sql: str) -> str:
    return run(["psql", PG_URL, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])


PG_ONE = """\
BEGIN;
SELECT id AS jid FROM compare_outbox.jobs WHERE state = 'pending' ORDER BY id LIMIT 1
  FOR UPDATE SKIP LOCKED \\gset
UPDATE compare_outbox.jobs SET state = 'claimed', lease = 1 WHERE id = :jid;
COMMIT;
UPDATE compare_outbox.jobs SET state = 'done', lease = NULL WHERE id = :jid;
"""

PG_BATCH = f"""\
WITH c AS (UPDATE compare_outbox.jobs SET state = 'claimed', lease = 1 WHERE id IN (
  SELECT id FROM compare_outbox.jobs WHERE state = 'pending' ORDER BY id LIMIT {BATCH}
  FOR UPDATE SKIP LOCKED) RETURNING id)
SELECT array_agg(id)::text AS ids FROM c \\gset
UPDATE compare_outbox.jobs SET state = 'done', lease = NULL WHERE id = ANY (:ids::bigint[]);
"""


def run(args: list[str], **kwargs) -> str:
    """Runs `args`; on failure, shows what the program wrote to stderr before raising."""
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        done.check_returncode()
    return done.stdout


def pgbench(script: str, clients: int, seconds: int = 0, each: int = 0) -> tuple[float, int]:
    """Seconds that `pgbench` took to run `script` on `clients` connections, for `seconds` or
    `each` times on each connection (connecting left out), and how many times it ran."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write(script)
        file.flush()
        limit = ["-T", str(seconds)] if seconds else ["-t", str(each)]
        out = run(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
                   *limit, "-f", file.name, PG_URL])
    tps = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding)", out)
    runs = int(re.search(r"actually processed: ([0-9]+)", out).group(1))
    return runs / float(tps.group(1)), runs


def pg_loop(clients: int, batch: int, seconds: int) -> float:
    """Jobs/s of the plain Postgres loop, by `pgbench`: one at a time for `seconds` (a table
    that runs dry makes pgbench fail), or `batch` at a time until 200,000 jobs are drained."""
    jobs = max(100_000, 10_000 * seconds) if batch == 1 else 200_000
    try:
        psql(
            "DROP SCHEMA IF EXISTS compare_outbox CASCADE; CREATE SCHEMA compare_outbox; "
            "CREATE TABLE compare_outbox.jobs (id BIGINT PRIMARY KEY, state TEXT NOT NULL, "
            "lease BIGINT, payload TEXT); "
            "CREATE INDEX ON compare_outbox.jobs (id) WHERE state = 'pending'; "
            f"INSERT INTO compare_outbox.jobs SELECT i, 'pending', NULL, repeat('x', 40) "
            f"FROM generate_series(1, {jobs}) i"
        )
        psql("VACUUM ANALYZE compare_outbox.jobs")  # not allowed in the transaction above
        if batch == 1:
            elapsed, _ = pgbench(PG_ONE, clients, seconds=seconds)
        else:
            elapsed, _ = pgbench(PG_BATCH, clients, each=jobs // batch // clients)
            pending = int(psql("SELECT count(*) FROM compare_outbox.jobs WHERE state = 'pending'"))
            assert pending == 0, f"{pending} jobs left: the figure would be wrong"
        return int(psql("SELECT count(*) FROM compare_outbox.jobs WHERE state = 'done'")) / elapsed
    finally:
        psql("DROP SCHEMA IF EXISTS compare_outbox CASCADE")


def pg_flushed_commits(seconds: int) -> float:
    """Flushed commits/s of one client updating one row: the ceiling of any queue that
    durably commits each job's completion on its own, one job at a time."""
    try:
        psql(
            "DROP SCHEMA IF EXISTS compare_outbox CASCADE; CREATE SCHEMA compare_outbox; "
            "CREATE TABLE compare_outbox.probe (id INT PRIMARY KEY, n BIGINT NOT NULL); "
            "INSERT INTO compare_outbox.probe VALUES (1, 0)"
        )
        elapsed, runs = pgbench("UPDATE compare_outbox.probe SET n = n + 1 WHERE id = 1;\n", 1,
                                seconds=seconds)
        return runs / elapsed
    finally:
        psql("DROP SCHEMA IF EXISTS compare_outbox CASCADE")


GRAPHILE_JS = r"""
const { run, runMigrations } = require("graphile-worker");
const { Pool } = require("pg");
const [N, batched] = [+process.argv[2], process.argv[3] === "batched"];
const [connectionString, schema] = [process.argv[4], "compare_graphile_worker"];
const pool = new Pool({ connectionString });
(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await runMigrations({ connectionString, schema });
  await pool.query(`SELECT ${schema}.add_jobs(ARRAY(SELECT ROW('noop', '{}'::json, null,
    null, null, null, null, null)::${schema}.job_spec FROM generate_series(1, $1)))`, [N]);
  let done = 0, finish;
  const all = new Promise((resolve) => (finish = resolve));
  const options = { connectionString, schema, concurrency: 24, maxPoolSize: 25,
    noHandleSignals: true,
    taskList: { noop: async () => { if (++done === N) finish(); } } };
  if (batched) options.preset = { worker: { localQueue: { size: 500 },
    completeJobBatchDelay: 0, failJobBatchDelay: 0 } };
  const start = process.hrtime.bigint();
  const runner = await run(options);
  await all;
  await runner.stop();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const left = (await pool.query(`SELECT count(*)::int AS n FROM ${schema}._private_jobs`))
    .rows[0].n;
  if (left !== 0) throw new Error(`${left} jobs left`);
  console.log(N / seconds);
})().catch((e) => { console.error(e); process.exitCode = 1; })
  .finally(async () => { await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end(); });
"""


def graphile(work: Path, jobs: int, batched: bool) -> float:
    """Jobs/s of graphile-worker draining `jobs` no-op jobs from one process."""
    if not (work / "node_modules" / "graphile-worker").exists():
        work.mkdir(parents=True, exist_ok=True)
        run(["npm", "init", "-y"], cwd=work)
        run(["npm", "install", GRAPHILE, "pg"], cwd=work)
    (work / "drain.js").write_text(GRAPHILE_JS)
    out = run(["node", "drain.js", str(jobs), "batched" if batched else "plain", PG_URL],
              cwd=work)
    return float(out.strip().splitlines()[-1])


THRPT = re.compile(r"thrpt:\s+\[\s*\S+\s+\S+\s+(\S+)\s+(\S+)")


def mia(bench: str, filter_: str) -> dict[str, float]:
    """Median jobs/s of each criterion bench that `filter_` selects."""
    env = dict(os.environ, MIA_TEST_POSTGRES_URL=PG_URL)
    out = run(["cargo", "bench", "-q", "-p", "mia-store", "--features", "postgres,sqlite",
               "--bench", bench, "--", "--warm-up-time", "1", "--measurement-time", "3", filter_],
              cwd=ROOT, env=env)
    scale = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6}
    rates, name = {}, None
    for line in out.splitlines():
        if line and not line[0].isspace():
            name = line.split()[0]  # criterion names a bench at the start of a line
        elif (found := THRPT.search(line)) and name:
            rates[name] = float(found.group(1)) * scale[found.group(2)]
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-mia", action="store_true", help="measure the references only")
    parser.add_argument("--graphile", action="store_true", help="also graphile-worker (npm)")
    parser.add_argument("--npm-dir", type=Path, default=HERE / "data" / "graphile",
                        help="where graphile-worker is installed")
    parser.add_argument("--seconds", type=int, default=10, help="each pgbench run")
    args = parser.parse_args()

    rows: list[tuple[str, float]] = []

    def show(name: str, rate: float) -> None:
        rows.append((name, rate))
        print(f"{name:<58} {rate:>10,.0f} jobs/s", flush=True)

    show("plain SQLite loop, one at a time", sqlite_loop(5_000, 1))
    show(f"plain SQLite loop, {BATCH} at a time", sqlite_loop(100_000, BATCH))
    if shutil.which("pgbench"):
        show("Postgres flushed commits, 1 client (a one-row UPDATE each)",
             pg_flushed_commits(args.seconds))
        for clients in (1, 4):
            show(f"plain Postgres loop, one at a time, {clients} client(s)",
                 pg_loop(clients, 1, args.seconds))
        for clients in (1, 4):
            show(f"plain Postgres loop, {BATCH} at a time, {clients} client(s)",
                 pg_loop(clients, BATCH, args.seconds))
    else:
        print("skipped the Postgres loop: pgbench is not installed", file=sys.stderr)
    if args.graphile:
        show("graphile-worker, 24 concurrent, plain", graphile(args.npm_dir, 20_000, False))
        show("graphile-worker, 24 concurrent, localQueue 500", graphile(args.npm_dir, 50_000, True))
    if not args.no_mia:
        for name, rate in mia("sqlite", "sqlite.outbox.full").items():
            show(f"mia {name}", rate)
        for name, rate in mia("postgres", "postgres.outbox").items():
            show(f"mia {name}", rate)


if __name__ == "__main__":
    main()
