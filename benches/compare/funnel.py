#!/usr/bin/env python3
"""mia funnel vs DuckDB on the same CSV file.

Generates a deterministic data set (seeded; ~10 million events, ~1.8 million users, 30 days)
unless it exists, runs the same 5-step ordered funnel in DuckDB and in `mia funnel` (release
build), checks that the step counts are identical, and prints the times: loading and the
query, separately.

    pip install duckdb
    python3 benches/compare/funnel.py            # 10M events
    python3 benches/compare/funnel.py --users 18000 --data /tmp/small.csv   # a quick check

Only the standard library and `duckdb` are needed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STEPS = ["sent", "delivered", "read", "clicked", "converted"]
DAY_US = 86_400 * 1_000_000
START_US = 1_767_225_600 * 1_000_000  # 2026-01-01T00:00:00Z


def generate(path: Path, users: int, seed: int, max_events: int) -> None:
    """Writes the events of `users` simulated contacts, sorted by time, to `path`.

    Each contact receives 1 + Geometric campaign messages at uniform times over 30 days; each
    message is delivered (92%, a few seconds later, sometimes in the same second as the send),
    read, clicked, and converted with decreasing probabilities and growing delays (some
    conversions land after the 7-day window), with some lost delivery receipts (read without
    delivered), replies and opt-outs in between. Timestamps are integer microseconds; delays
    are whole seconds, so steps sometimes share a timestamp.
    """
    import duckdb

    rng = random.Random(seed)
    raw = path.with_suffix(".unsorted.csv")
    span = 30 * DAY_US
    sec = 1_000_000
    with raw.open("w", buffering=1 << 20) as out:
        out.write("user_id,event,ts,variant\n")
        lines: list[str] = []
        for u in range(users):
            user = f"u{u:07d}"
            sends = 1
            while rng.random() < 0.505:
                sends += 1
            for _ in range(sends):
                variant = "A" if rng.random() < 0.5 else "B"
                t = START_US + int(rng.random() * span)
                lines.append(f"{user},sent,{t},{variant}\n")
                delivered = rng.random() < 0.92
                if delivered:
                    t += int(rng.expovariate(1 / 30)) * sec
                    lines.append(f"{user},delivered,{t},{variant}\n")
                if rng.random() < (0.62 if delivered else 0.2):
                    t += int(rng.expovariate(1 / 7200)) * sec
                    lines.append(f"{user},read,{t},{variant}\n")
                    if rng.random() < 0.05:
                        lines.append(f"{user},replied,{t + int(rng.expovariate(1 / 600)) * sec},{variant}\n")
                    if rng.random() < (0.30 if variant == "A" else 0.34):
                        t += int(rng.expovariate(1 / 3600)) * sec
                        lines.append(f"{user},clicked,{t},{variant}\n")
                        if rng.random() < 0.25:
                            t += int(rng.expovariate(1 / (2 * 86_400))) * sec
                            lines.append(f"{user},converted,{t},{variant}\n")
                if rng.random() < 0.01:
                    lines.append(f"{user},opted_out,{t + int(rng.expovariate(1 / 3600)) * sec},{variant}\n")
            if len(lines) > 100_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    # A log file is in time order, not grouped by user. Sorting on every column makes the
    # file byte-identical from run to run.
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"""
        COPY (
            SELECT * FROM read_csv('{raw}', header = true, columns = {{
                'user_id': 'VARCHAR', 'event': 'VARCHAR', 'ts': 'BIGINT', 'variant': 'VARCHAR'}})
            ORDER BY ts, user_id, event, variant
            LIMIT {max_events}
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )
    raw.unlink()


def duckdb_funnel(path: Path, window_us: int, runs: int) -> tuple[list[int], float | None, float, list[float]]:
    """The funnel in DuckDB: (counts, median seconds, load seconds, query seconds per run).

    Same semantics as mia's ordered mode: every `sent` starts an attempt; each next step is
    the earliest matching event at or after the previous step's timestamp (distinct names, so
    a simultaneous later step counts, as in mia) and at most one window after the attempt's
    `sent`; a user counts at the furthest step of any attempt; the time to convert is the
    fastest completing attempt per user.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(
        f"""
        CREATE TABLE events AS SELECT * FROM read_csv('{path}', header = true, columns = {{
            'user_id': 'VARCHAR', 'event': 'VARCHAR', 'ts': 'BIGINT', 'variant': 'VARCHAR'}})
        """
    )
    load = time.perf_counter() - started
    chain = [f"s1 AS (SELECT user_id, ts AS t1 FROM events WHERE event = '{STEPS[0]}')"]
    for k in range(2, len(STEPS) + 1):
        chain.append(
            f"""s{k} AS (
                SELECT a.user_id, a.t1, min(b.ts) AS t{k}
                FROM s{k - 1} a JOIN events b
                  ON b.user_id = a.user_id AND b.event = '{STEPS[k - 1]}'
                 AND b.ts >= a.t{k - 1} AND b.ts <= a.t1 + {window_us}
                GROUP BY a.user_id, a.t1)"""
        )
    n = len(STEPS)
    counts = ", ".join(f"(SELECT count(DISTINCT user_id) FROM s{k})" for k in range(1, n + 1))
    sql = (
        "WITH " + ",\n".join(chain) + f"\nSELECT {counts}, "
        f"(SELECT median(d) FROM (SELECT min(t{n} - t1) AS d FROM s{n} GROUP BY user_id))"
    )
    times = []
    row = None
    for _ in range(runs):
        started = time.perf_counter()
        row = con.execute(sql).fetchone()
        times.append(time.perf_counter() - started)
    assert row is not None
    median = None if row[n] is None else float(row[n]) / 1e6
    return [int(c) for c in row[:n]], median, load, times


def mia_funnel(binary: Path, path: Path, window: str, runs: int) -> tuple[list[int], float | None, list[float], list[float]]:
    """`mia funnel --timings`: (counts, median seconds, load seconds per run, query seconds per run)."""
    loads, queries = [], []
    result = None
    for _ in range(runs):
        out = subprocess.run(
            [str(binary), "funnel", "--steps", ",".join(STEPS), "--window", window, "--timings", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout)
        timings = json.loads(out.stderr.strip().splitlines()[-1])
        loads.append(timings["load_s"])
        queries.append(timings["query_s"])
    assert result is not None
    return [s["count"] for s in result["steps"]], result["median_time_to_convert_s"], loads, queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_800_000)
    parser.add_argument("--max-events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--data", type=Path, default=HERE / "data" / "events-10m.csv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mia", type=Path, help="a built mia binary (default: build it with cargo --release)")
    args = parser.parse_args()
    window = "7d"
    window_us = 7 * DAY_US

    if not args.data.exists():
        args.data.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.data} ({args.users} users, seed {args.seed}) ...", flush=True)
        started = time.perf_counter()
        generate(args.data, args.users, args.seed, args.max_events)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    size_mb = args.data.stat().st_size / 1e6

    binary = args.mia
    if binary is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "mia-cli"], cwd=ROOT, check=True)
        binary = target / "release" / "mia"

    d_counts, d_median, d_load, d_query = duckdb_funnel(args.data, window_us, args.runs)
    m_counts, m_median, m_load, m_query = mia_funnel(binary, args.data, window, args.runs)

    import duckdb

    print(f"\n{args.data.name}: {size_mb:.0f} MB, steps {','.join(STEPS)}, window {window}, {os.cpu_count()} cores")
    print(f"{'':10} {'counts':>60}  {'median s':>10}")
    print(f"{'duckdb':10} {str(d_counts):>60}  {d_median if d_median is None else round(d_median, 3):>10}")
    print(f"{'mia':10} {str(m_counts):>60}  {m_median if m_median is None else round(m_median, 3):>10}")
    print(f"\n{'':22} {'load (s)':>10} {'query (s), median of ' + str(args.runs):>26} {'all runs':>24}")
    print(f"{'duckdb ' + duckdb.__version__:22} {d_load:>10.2f} {statistics.median(d_query):>26.3f} {str([round(q, 3) for q in d_query]):>24}")
    print(f"{'mia (release)':22} {statistics.median(m_load):>10.2f} {statistics.median(m_query):>26.3f} {str([round(q, 3) for q in m_query]):>24}")

    same_median = (d_median is None and m_median is None) or (
        d_median is not None and m_median is not None and abs(d_median - m_median) < 1e-6
    )
    if d_counts != m_counts or not same_median:
        print("\nMISMATCH: the step counts or medians differ", file=sys.stderr)
        return 1
    print("\nstep counts identical; medians identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
