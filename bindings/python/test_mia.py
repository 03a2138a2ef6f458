"""Tests of the Python bindings: python3 bindings/python/test_mia.py

Needs the cdylib (`cargo build -p mia-ffi`); set MIA_LIB to its path if it is not in cargo's
default target folder.
"""

import sys
import tempfile
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import example  # noqa: E402
import mia  # noqa: E402

START = "2026-12-01T12:00:00Z"


def people(agent, n, consent_every=2):
    agent.import_contacts(
        [{"id": f"u{i}", "user_id": 100 + i, "time_zone": "Europe/Berlin"} for i in range(n)]
    )
    agent.record_consent(
        [
            {
                "contact": f"u{i}",
                "notice_version": "v1",
                "evidence": {"method": "web_form", "reference": f"f{i}"},
                "recorded_at": "2026-11-30T00:00:00Z",
            }
            for i in range(0, n, consent_every)
        ]
    )


class DryRun(unittest.TestCase):
    def test_example_sends_only_with_consent_and_accounts_for_everyone(self):
        report, seen = example.dry_run(seed=3, contacts=60)
        self.assertEqual(report["audience"], 60)
        self.assertEqual(report["skipped"], {"no_consent": 30, "withdrawn": 1})
        # Everyone is counted exactly once; 29 had consent and did not send STOP.
        reached = (
            report["sent"]
            + report["open"]
            + sum(report["failed"].values())
            + sum(report["cancelled"].values())
        )
        self.assertEqual(reached, 29)
        self.assertGreater(report["sent"], 20)
        self.assertEqual(seen.get("sent"), report["sent"])
        self.assertEqual(report["state"], "completed")

    def test_escalated_copy_waits_for_a_named_reviewer(self):
        reviews = []
        with mia.Agent({"seed": 1, "start": START}) as agent:
            agent.on_review(reviews.append)
            people(agent, 4)
            campaign = agent.create_campaign(
                {
                    "name": "Sale",
                    "product": "tea",
                    "offer": "10% off",
                    "call_to_action_url": "https://unknown.example/x",
                }
            )
            self.assertEqual(campaign["state"], "in_review")
            self.assertEqual(len(reviews), 2, reviews)
            with self.assertRaises(mia.MiaError) as refused:
                agent.launch(campaign["id"])
            self.assertEqual(refused.exception.name, "MIA_INVALID_STATE")
            for item in reviews:
                agent.approve_review(item["id"], "ana")
            with self.assertRaises(mia.MiaError) as twice:
                agent.approve_review(reviews[0]["id"], "ana")
            self.assertEqual(twice.exception.name, "MIA_INVALID_STATE")
            summary = agent.launch(campaign["id"])
            self.assertEqual(summary["queued"], 2)

    def test_stop_cancels_before_the_next_send_and_the_store_survives_reopening(self):
        with tempfile.TemporaryDirectory() as folder:
            config = {"store": f"{folder}/mia.db", "seed": 5, "start": START}
            with mia.Agent(config) as agent:
                people(agent, 6, consent_every=1)
            with mia.Agent(config) as agent:
                campaign = agent.create_campaign({"name": "N", "product": "tea", "offer": "new"})
                self.assertEqual(agent.launch(campaign["id"])["queued"], 6)
                stats = agent.record_inbound([{"kind": "stop", "contact": "u1"}])
                self.assertEqual(stats["inbound"], 1)
                agent.run(attribution_hours=1)
                report = agent.report(campaign["id"])
                self.assertEqual(report["cancelled"], {"withdrawn": 1})


class Errors(unittest.TestCase):
    def assertStatus(self, name, function, *args, **kwargs):
        with self.assertRaises(mia.MiaError) as raised:
            function(*args, **kwargs)
        self.assertEqual(raised.exception.name, name, raised.exception.message)
        return raised.exception

    def test_bad_configuration(self):
        self.assertStatus("MIA_INVALID_JSON", mia.Agent, {"colour": "blue"})
        self.assertStatus("MIA_INVALID_INPUT", mia.Agent, {"llm": "claude"})

    def test_closed_handles_are_detected(self):
        agent = mia.Agent({"start": START})
        agent.close()
        error = self.assertStatus("MIA_CLOSED_HANDLE", agent.pending_reviews)
        self.assertIn("agent", error.message)
        self.assertStatus("MIA_CLOSED_HANDLE", agent.close)
        bandit = mia.Bandit()
        bandit.close()
        self.assertStatus("MIA_CLOSED_HANDLE", bandit.assign, "c", "u", ["A"])

    def test_null_utf8_and_json_errors(self):
        self.assertStatus("MIA_NULL_POINTER", mia.scan_text, None)
        self.assertStatus("MIA_INVALID_UTF8", mia.scan_text, b"caf\xe9")
        with mia.Agent({"start": START}) as agent:
            self.assertStatus("MIA_INVALID_JSON", agent.import_contacts, [{"id": "x"}])
            self.assertStatus(
                "MIA_INVALID_INPUT",
                agent.import_contacts,
                [{"id": "x", "user_id": 1, "time_zone": "Mars/Olympus"}],
            )
            self.assertStatus("MIA_NOT_FOUND", agent.report, "cmp_nope")
            self.assertStatus("MIA_NULL_POINTER", agent.launch, None)

    def test_an_exception_in_a_callback_reaches_the_caller(self):
        def explode(_event):
            raise RuntimeError("callback failed")

        with mia.Agent({"start": START}) as agent:
            agent.on_event(explode)
            people(agent, 2)
            with self.assertRaisesRegex(RuntimeError, "callback failed"):
                agent.record_inbound({"kind": "stop", "contact": "u0"})


class ScanAndBandit(unittest.TestCase):
    def test_scan_finds_personal_data(self):
        result = mia.scan_text("Write to anna@example.org. Reply STOP to opt out.", redact="tag")
        self.assertEqual([f["kind"] for f in result["findings"]], ["EMAIL"])
        self.assertEqual(result["verdict"], "escalate")
        self.assertIn("<EMAIL>", result["redacted"])
        clean = mia.scan_text("New tea in store. Reply STOP to opt out.")
        self.assertEqual(clean["verdict"], "allow")

    def test_bandit_is_sticky_and_counts_a_reward_once(self):
        with mia.Bandit({"policy": "thompson", "seed": 9}) as bandit:
            first = bandit.assign("c", "u1", ["A", "B"])
            self.assertEqual(bandit.assign("c", "u1", ["A", "B"]), first)
            self.assertTrue(bandit.reward("c", "u1", first["variant"]))
            self.assertFalse(bandit.reward("c", "u1", first["variant"]))
            stats = {s["variant"]: s for s in bandit.stats("c")}
            self.assertEqual(stats[first["variant"]]["reward"], 1.0)

    def test_calls_from_many_threads(self):
        errors = []
        with mia.Agent({"start": START}) as agent:

            def work(t):
                try:
                    for i in range(10):
                        agent.import_contacts({"id": f"t{t}-{i}", "user_id": t * 100 + i,
                                               "time_zone": "UTC"})
                        mia.scan_text("Hello. Reply STOP to opt out.")
                except Exception as error:  # collected and asserted below
                    errors.append(error)

            threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    print(f"mia {mia.version()} from {mia.library_path()}")
    unittest.main()
