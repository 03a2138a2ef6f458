#!/usr/bin/env python3
"""mia's PII scanner vs Microsoft Presidio on the same labelled corpus.

Writes mia's labelled corpus (`crates/mia-safety/tests/corpus`, seeded: chat and marketing
messages in eight languages with personal data at known offsets and many hard negatives) with
mia's findings, runs Presidio's analyzer over the same texts, and prints per-entity precision
and recall for both, on exact spans and on overlapping spans, and the messages scanned per
second.

    pip install presidio-analyzer
    python3 benches/compare/presidio.py                    # builds the example (release)
    python3 benches/compare/presidio.py --corpus FILE      # an existing dump of the example

Presidio normally runs with a spaCy model (`en_core_web_lg`), which is not on PyPI and cannot
be downloaded here. The entities compared (e-mail, phone, card, IBAN, IP, URL, crypto wallet)
come from Presidio's pattern recognizers, which need no model; this script gives Presidio a
blank English spaCy pipeline (tokenizer only). What that loses is the context boost from
lemmas ("phone", "card" near a number), which raises scores but does not add or remove
findings at the default threshold of 0 used here.

The corpus was written by the same people as mia's scanner, so it follows mia's conventions
(exact spans: no trailing punctuation on URLs, the whole obfuscated e-mail); the overlap
columns forgive span conventions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# Presidio entity names to mia's.
ENTITIES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "URL": "URL",
    "CRYPTO": "CRYPTO",
}
KINDS = list(ENTITIES.values())


def dump_corpus(path: Path, messages: int) -> None:
    target = os.environ.get("CARGO_TARGET_DIR")
    env = dict(os.environ)
    if target:
        env["CARGO_TARGET_DIR"] = target
    subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "mia-safety", "--example", "pii_corpus", "--",
         str(path), str(messages)],
        cwd=ROOT, check=True, env=env,
    )


def load(path: Path) -> tuple[list[dict], float]:
    rows, rate = [], 0.0
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            if "mia_messages_per_second" in row:
                rate = row["mia_messages_per_second"]
            else:
                rows.append(row)
    return rows, rate


def presidio_engine():
    import logging

    # tldextract (under Presidio's URL recognizer) tries to fetch the public suffix list and
    # falls back to its bundled copy when offline; the failed fetch is not an error here.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankSpacy(SpacyNlpEngine):
        """Presidio's spaCy engine over a blank English pipeline (no model download)."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacy(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def run_presidio(rows: list[dict]) -> tuple[list[list[dict]], float]:
    analyzer = presidio_engine()
    entities = list(ENTITIES)
    analyzer.analyze(text="warm up +1 415 555 2671", language="en", entities=entities)
    started = time.perf_counter()
    found = []
    for row in rows:
        results = analyzer.analyze(text=row["text"], language="en", entities=entities)
        found.append([
            {"kind": ENTITIES[r.entity_type], "start": r.start, "end": r.end} for r in results
        ])
    elapsed = time.perf_counter() - started
    return found, len(rows) / elapsed


def score(rows: list[dict], findings: list[list[dict]], overlap: bool) -> dict[str, dict]:
    def same(a: dict, b: dict) -> bool:
        if a["kind"] != b["kind"]:
            return False
        if overlap:
            return a["start"] < b["end"] and b["start"] < a["end"]
        return a["start"] == b["start"] and a["end"] == b["end"]

    out = {k: {"tp": 0, "fp": 0, "fn": 0} for k in KINDS}
    for row, found in zip(rows, findings):
        for f in found:
            hit = any(same(f, l) for l in row["labels"])
            out[f["kind"]]["tp" if hit else "fp"] += 1
        for l in row["labels"]:
            if not any(same(f, l) for f in found):
                out[l["kind"]]["fn"] += 1
    for c in out.values():
        c["precision"] = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        c["recall"] = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="an existing dump (skips the cargo build)")
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    corpus = args.corpus
    if corpus is None:
        corpus = HERE / "data" / f"pii-corpus-{args.messages}.jsonl"
        corpus.parent.mkdir(exist_ok=True)
        dump_corpus(corpus, args.messages)
    rows, mia_rate = load(corpus)
    presidio_found, presidio_rate = run_presidio(rows)
    mia_found = [row["mia"] for row in rows]

    results = {"messages": len(rows), "labels": sum(len(r["labels"]) for r in rows),
               "messages_per_second": {"mia": round(mia_rate), "presidio": round(presidio_rate)}}
    print(f"{len(rows)} messages, {results['labels']} labelled entities\n")
    for overlap in (False, True):
        name = "overlapping spans" if overlap else "exact spans"
        mia_s, pres_s = score(rows, mia_found, overlap), score(rows, presidio_found, overlap)
        results["overlap" if overlap else "exact"] = {"mia": mia_s, "presidio": pres_s}
        print(f"{name:<18} {'mia P':>8} {'mia R':>8} {'Presidio P':>11} {'Presidio R':>11}")
        for k in KINDS:
            m, p = mia_s[k], pres_s[k]
            print(f"{k:<18} {m['precision']:>8.4f} {m['recall']:>8.4f} "
                  f"{p['precision']:>11.4f} {p['recall']:>11.4f}")
        print()
    print(f"messages/s: mia {mia_rate:,.0f}, Presidio {presidio_rate:,.0f} "
          f"({mia_rate / presidio_rate:,.0f}x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
