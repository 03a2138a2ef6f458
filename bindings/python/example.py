"""Run with: cargo build -p mia-ffi && python3 bindings/python/example.py

A dry-run from Python through the C ABI: 200 contacts (every other one opted in on a web
form), copy from the offline copywriter, the content and send guards, the simulated Telegram
in virtual time, a STOP in the middle, and the report. Then one text through the safety scan.
No keys, no network.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mia  # noqa: E402

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"]


def dry_run(seed=7, contacts=200):
    """Runs a campaign to ``contacts`` people in virtual time; returns (report, events seen)."""
    seen = {}

    def count(event):
        kind = event["kind"]["kind"]
        seen[kind] = seen.get(kind, 0) + 1

    config = {"seed": seed, "start": "2026-12-01T12:00:00Z", "allow_domains": ["shop.example"]}
    with mia.Agent(config) as agent:
        agent.on_event(count)
        agent.import_contacts(
            [
                {"id": f"user-{i}", "user_id": 1000 + i, "time_zone": ZONES[i % len(ZONES)]}
                for i in range(contacts)
            ]
        )
        agent.record_consent(
            [
                {
                    "contact": f"user-{i}",
                    "notice_version": "v1",
                    "evidence": {"method": "web_form", "reference": f"form-{i}"},
                    "recorded_at": "2026-11-30T12:00:00Z",
                }
                for i in range(0, contacts, 2)
            ]
        )
        # Someone changes their mind before the campaign: no message will reach them.
        agent.record_inbound({"kind": "stop", "contact": "user-0"})

        campaign = agent.create_campaign(
            {
                "name": "Winter sale",
                "product": "the winter collection",
                "offer": "25% off until Sunday",
                "call_to_action_url": "https://shop.example/sale",
            }
        )
        agent.launch(campaign["id"])
        agent.run(attribution_hours=48)
        return agent.report(campaign["id"]), seen


def main():
    report, seen = dry_run()
    print(
        f"{report['sent']} of {report['audience']} contacts got a message; "
        f"skipped: {report['skipped']}"
    )
    for name, variant in sorted(report["variants"].items()):
        print(
            f"variant {name}: sent {variant['sent']}, read {variant['read']}, "
            f"clicked {variant['clicked']}, bought {variant['converted']}"
        )
    print(f"events seen by the callback: {json.dumps(seen, sort_keys=True)}")

    scan = mia.scan_text(
        "Call Anna on +49 30 1234567 for 90% off, guaranteed! Reply STOP to opt out.",
        locale="de",
        redact="tag",
    )
    print(f"scan: {scan['verdict']} ({', '.join(r['rule'] for r in scan['rules'])})")
    print(f"redacted: {scan['redacted']}")


if __name__ == "__main__":
    main()
