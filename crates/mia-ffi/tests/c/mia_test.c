/*
 * The C ABI from C: the happy path (contacts, consent, inbound events, a campaign created,
 * reviewed, launched and run in virtual time, its report, a scan, a bandit, a SQLite store
 * reopened) and every error path (NULL pointers, invalid UTF-8, bad JSON, unknown keys,
 * closed and made-up handles, double frees, wrong states), callbacks included.
 *
 * Built and run by tests/c_abi.rs, under AddressSanitizer and UBSan where the compiler has
 * them. Usage: mia_test <scratch directory>. Prints "N passed, M failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mia.h"

static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, " (last error: %s)\n", mia_last_error());      \
        }                                                                  \
    } while (0)

#define CHECK_STATUS(call, expected)                                               \
    do {                                                                           \
        MiaStatus got_ = (call);                                                   \
        CHECK(got_ == (expected), "%s returned %s, expected %s", #call,           \
              mia_status_name(got_), mia_status_name(expected));                   \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, MIA_OK)

static int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* Copies the string value of the first "key":"value" in a JSON text into out. */
static int json_string(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *start = json ? strstr(json, pattern) : NULL;
    if (start == NULL) return 0;
    start += strlen(pattern);
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= size) return 0;
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

/* What the callbacks saw. */
struct seen {
    int events;
    int sent;
    int opted_out;
    int reviews;
    int reentrant_ok;
    MiaAgent *agent;
    char review_id[128];
};

static void on_event(void *userdata, const char *event_json) {
    struct seen *seen = userdata;
    seen->events++;
    if (contains(event_json, "\"kind\":\"sent\"")) seen->sent++;
    if (contains(event_json, "\"kind\":\"opted_out\"")) seen->opted_out++;
}

static void on_review(void *userdata, const char *review_json) {
    struct seen *seen = userdata;
    seen->reviews++;
    json_string(review_json, "id", seen->review_id, sizeof seen->review_id);
    /* Calling back into the same handle from a callback is allowed. */
    char *list = NULL;
    if (mia_review_list(seen->agent, &list) == MIA_OK && contains(list, seen->review_id)) {
        seen->reentrant_ok++;
    }
    mia_string_free(list);
}

static void test_errors_without_an_agent(void) {
    MiaAgent *agent = (MiaAgent *)(uintptr_t)0x1;
    /* NULL out-parameter. */
    CHECK_STATUS(mia_agent_new(NULL, NULL), MIA_NULL_POINTER);
    CHECK(contains(mia_last_error(), "out_agent"), "names the argument: %s", mia_last_error());
    /* Not JSON; the out-parameter is cleared before anything else. */
    CHECK_STATUS(mia_agent_new("{seed: 1", &agent), MIA_INVALID_JSON);
    CHECK(agent == NULL, "a failed call leaves NULL in the out-parameter");
    /* Unknown keys are errors, by name. */
    CHECK_STATUS(mia_agent_new("{\"seed\": 1, \"colour\": \"blue\"}", &agent), MIA_INVALID_JSON);
    CHECK(contains(mia_last_error(), "colour"), "names the key: %s", mia_last_error());
    /* Invalid UTF-8. */
    CHECK_STATUS(mia_agent_new("{\"store\": \"caf\xe9\"}", &agent), MIA_INVALID_UTF8);
    /* Well-formed but refused: no network LLM in this build, no way around the simulator. */
    CHECK_STATUS(mia_agent_new("{\"llm\": \"claude\"}", &agent), MIA_INVALID_INPUT);
    CHECK_STATUS(mia_agent_new("{\"transport\": \"bot_api\"}", &agent), MIA_INVALID_INPUT);

    /* Handles that are NULL, made up, or of the wrong kind. */
    char *out = NULL;
    CHECK_STATUS(mia_review_list(NULL, &out), MIA_NULL_POINTER);
    CHECK_STATUS(mia_review_list((MiaAgent *)(uintptr_t)0xdead0, &out), MIA_CLOSED_HANDLE);
    CHECK_STATUS(mia_agent_free(NULL), MIA_OK);
    CHECK_STATUS(mia_agent_free((MiaAgent *)(uintptr_t)0xdead0), MIA_CLOSED_HANDLE);

    /* Strings: a double free and a stranger are refused, NULL is fine. */
    char local[] = "not from mia";
    CHECK_STATUS(mia_string_free(local), MIA_INVALID_INPUT);
    CHECK_STATUS(mia_string_free(NULL), MIA_OK);

    CHECK(strcmp(mia_status_name(MIA_CLOSED_HANDLE), "MIA_CLOSED_HANDLE") == 0, "status name");
    CHECK(strlen(mia_version()) > 0, "a version");
}

static void test_scan(void) {
    char *result = NULL;
    CHECK_OK(mia_scan_text("Call me on +49 30 1234567 or anna@example.org. Reply STOP to opt out.",
                           "{\"locale\": \"de\", \"redact\": \"tag\"}", &result));
    CHECK(contains(result, "\"kind\":\"PHONE\""), "finds the phone: %s", result);
    CHECK(contains(result, "\"kind\":\"EMAIL\""), "finds the email: %s", result);
    CHECK(contains(result, "\"verdict\":\"escalate\""), "escalates personal data: %s", result);
    CHECK(contains(result, "<PHONE>"), "redacts: %s", result);
    CHECK_OK(mia_string_free(result));
    CHECK_STATUS(mia_string_free(result), MIA_INVALID_INPUT); /* double free is refused */

    result = NULL;
    CHECK_OK(mia_scan_text("Hello! Our new tea is here. Reply STOP to opt out.", NULL, &result));
    CHECK(contains(result, "\"verdict\":\"allow\""), "clean text passes: %s", result);
    mia_string_free(result);

    result = NULL;
    CHECK_OK(mia_scan_text("Totally not a scam", "{\"blacklist\": [\"scam\"]}", &result));
    CHECK(contains(result, "\"verdict\":\"deny\""), "blacklist denies: %s", result);
    mia_string_free(result);

    CHECK_STATUS(mia_scan_text(NULL, NULL, &result), MIA_NULL_POINTER);
    CHECK_STATUS(mia_scan_text("hi", NULL, NULL), MIA_NULL_POINTER);
    CHECK_STATUS(mia_scan_text("caf\xc3", NULL, &result), MIA_INVALID_UTF8);
    CHECK_STATUS(mia_scan_text("hi", "[1, 2", &result), MIA_INVALID_JSON);
    CHECK_STATUS(mia_scan_text("hi", "{\"redact\": \"shred\"}", &result), MIA_INVALID_INPUT);
    CHECK(result == NULL, "failed calls leave NULL");
}

static void test_bandit(void) {
    MiaBandit *bandit = NULL;
    CHECK_OK(mia_bandit_new("{\"policy\": \"thompson\", \"seed\": 3}", &bandit));
    char *first = NULL, *again = NULL;
    CHECK_OK(mia_bandit_assign(bandit, "spring", "user-1", "[\"A\", \"B\"]", &first));
    CHECK_OK(mia_bandit_assign(bandit, "spring", "user-1", "[\"A\", \"B\"]", &again));
    CHECK(first && again && strcmp(first, again) == 0, "sticky: %s vs %s", first, again);
    char variant[16] = "";
    CHECK(json_string(first, "variant", variant, sizeof variant), "a variant: %s", first);
    bool counted = false;
    CHECK_OK(mia_bandit_reward(bandit, "spring", "user-1", variant, 1.0, &counted));
    CHECK(counted, "the first reward counts");
    CHECK_OK(mia_bandit_reward(bandit, "spring", "user-1", variant, 1.0, &counted));
    CHECK(!counted, "a second reward for the same assignment does not");
    char *stats = NULL;
    CHECK_OK(mia_bandit_stats(bandit, "spring", &stats));
    CHECK(contains(stats, "\"reward\":1.0"), "stats: %s", stats);
    mia_string_free(first);
    mia_string_free(again);
    mia_string_free(stats);

    char *out = NULL;
    CHECK_STATUS(mia_bandit_assign(bandit, "spring", "user-2", "A, B", &out), MIA_INVALID_JSON);
    CHECK_STATUS(mia_bandit_assign(bandit, "spring", "user-2", "[]", &out), MIA_INVALID_INPUT);
    CHECK_STATUS(mia_bandit_reward(bandit, "spring", "user-1", "A", 1.0, NULL), MIA_NULL_POINTER);
    CHECK_STATUS(mia_bandit_new("{\"policy\": \"coin-flip\"}", &bandit), MIA_INVALID_INPUT);
    CHECK(bandit == NULL, "a failed new leaves NULL");

    MiaBandit *b = NULL;
    CHECK_OK(mia_bandit_new(NULL, &b));
    CHECK_OK(mia_bandit_free(b));
    CHECK_STATUS(mia_bandit_free(b), MIA_CLOSED_HANDLE);
    CHECK_STATUS(mia_bandit_assign(b, "spring", "user-1", "[\"A\"]", &out), MIA_CLOSED_HANDLE);
    CHECK(contains(mia_last_error(), "bandit"), "says which handle: %s", mia_last_error());
}

/* Imports n contacts; consent for every other one. */
static void add_people(MiaAgent *agent, int n) {
    size_t size = (size_t)n * 256 + 16;
    char *contacts = malloc(size), *consents = malloc(size);
    size_t c = 0, k = 0;
    c += (size_t)snprintf(contacts + c, size - c, "[");
    k += (size_t)snprintf(consents + k, size - k, "[");
    for (int i = 0; i < n; i++) {
        c += (size_t)snprintf(contacts + c, size - c,
                              "%s{\"id\": \"user-%d\", \"user_id\": %d, \"time_zone\": \"%s\"}",
                              i ? "," : "", i, 1000 + i, i % 2 ? "Europe/Berlin" : "UTC");
        if (i % 2 == 0) {
            k += (size_t)snprintf(consents + k, size - k,
                                  "%s{\"contact\": \"user-%d\", \"notice_version\": \"v1\", "
                                  "\"evidence\": {\"method\": \"web_form\", \"reference\": "
                                  "\"form-%d\"}, \"recorded_at\": \"2026-11-30T12:00:00Z\"}",
                                  k > 1 ? "," : "", i, i);
        }
    }
    snprintf(contacts + c, size - c, "]");
    snprintf(consents + k, size - k, "]");
    size_t count = 0;
    CHECK_OK(mia_contact_import(agent, contacts, &count));
    CHECK(count == (size_t)n, "imported %zu", count);
    CHECK_OK(mia_consent_record(agent, consents, &count));
    CHECK(count == (size_t)(n + 1) / 2, "recorded %zu", count);
    free(contacts);
    free(consents);
}

static void test_input_errors(MiaAgent *agent) {
    size_t count = 99;
    CHECK_STATUS(mia_contact_import(agent, "[{\"id\": \"x\", \"user_id\": 5, \"time_zone\": \"Mars/Olympus\"}]",
                                    &count), MIA_INVALID_INPUT);
    CHECK(count == 0, "nothing imported");
    CHECK_STATUS(mia_contact_import(agent, "[{\"id\": \"x\", \"user_id\": 5}]", &count), MIA_INVALID_JSON);
    CHECK_STATUS(mia_contact_import(agent, NULL, &count), MIA_NULL_POINTER);
    CHECK_STATUS(mia_contact_import(agent, "[]", NULL), MIA_NULL_POINTER);
    /* Consent needs evidence (shape) and a notice version (value). */
    CHECK_STATUS(mia_consent_record(agent, "{\"contact\": \"user-1\", \"notice_version\": \"v1\"}", &count),
                 MIA_INVALID_JSON);
    CHECK_STATUS(mia_consent_record(agent,
                                    "{\"contact\": \"user-1\", \"evidence\": {\"method\": \"web\", "
                                    "\"reference\": \"f\"}}", &count), MIA_INVALID_INPUT);
    char *out = NULL;
    CHECK_STATUS(mia_inbound_record(agent, "{\"kind\": \"click\", \"contact\": \"user-0\"}", &out),
                 MIA_INVALID_INPUT); /* which message? */
    CHECK_STATUS(mia_inbound_record(agent, "{\"kind\": \"stop\", \"contact\": \"nobody\"}", &out),
                 MIA_NOT_FOUND);
    CHECK_STATUS(mia_inbound_record(agent, "{\"kind\": \"wave\", \"contact\": \"user-0\"}", &out),
                 MIA_INVALID_JSON);
    CHECK_STATUS(mia_campaign_create(agent, "{\"name\": \"x\"}", &out), MIA_INVALID_JSON);
    CHECK_STATUS(mia_campaign_create(agent, "{\"name\": \"x\", \"product\": \"tea\", \"offer\": \"y\", "
                                            "\"variant_count\": 9}", &out), MIA_INVALID_INPUT);
    CHECK_STATUS(mia_campaign_report(agent, "cmp_missing", &out), MIA_NOT_FOUND);
    CHECK_STATUS(mia_review_approve(agent, "rev_missing", "ana", &out), MIA_NOT_FOUND);
    CHECK_STATUS(mia_agent_run(agent, "{\"attribution_hours\": 100000}", &out), MIA_INVALID_INPUT);
    CHECK(out == NULL, "failed calls leave NULL");
}

struct worker {
    MiaAgent *agent;
    int id;
    int ok;
};

static void *work(void *arg) {
    struct worker *w = arg;
    w->ok = 1;
    for (int i = 0; i < 20; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"id\": \"t%d-%d\", \"user_id\": %d, \"time_zone\": \"UTC\"}",
                 w->id, i, 500000 + w->id * 100 + i);
        size_t count = 0;
        char *result = NULL;
        if (mia_contact_import(w->agent, json, &count) != MIA_OK || count != 1) w->ok = 0;
        if (mia_scan_text("Hi! Reply STOP to opt out.", NULL, &result) != MIA_OK) w->ok = 0;
        mia_string_free(result);
    }
    return NULL;
}

static void test_threads(MiaAgent *agent) {
    pthread_t threads[4];
    struct worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (struct worker){agent, i, 0};
        pthread_create(&threads[i], NULL, work, &workers[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(workers[i].ok, "thread %d: every call on the shared handle succeeded", i);
    }
}

static void test_campaign(const char *scratch) {
    struct seen seen = {0};
    MiaAgent *agent = NULL;
    CHECK_OK(mia_agent_new("{\"seed\": 7, \"start\": \"2026-12-01T12:00:00Z\", "
                           "\"allow_domains\": [\"shop.example\"]}", &agent));
    seen.agent = agent;
    CHECK_OK(mia_agent_set_event_callback(agent, on_event, &seen));
    CHECK_OK(mia_agent_set_review_callback(agent, on_review, &seen));

    add_people(agent, 40);
    test_input_errors(agent);

    /* Someone new opts in with /start; user-2 sends STOP. */
    char *stats = NULL;
    CHECK_OK(mia_inbound_record(agent, "[{\"kind\": \"opt_in\", \"user_id\": 77, \"payload\": \"marketing\"},"
                                       " {\"kind\": \"stop\", \"contact\": \"user-2\"}]", &stats));
    CHECK(contains(stats, "\"inbound\":2"), "two events handled: %s", stats);
    mia_string_free(stats);
    CHECK(seen.opted_out == 1, "the event callback saw the STOP (%d)", seen.opted_out);

    /* A link to a domain that is not allowed: a human must look. */
    char *campaign = NULL, id[128] = "";
    CHECK_OK(mia_campaign_create(agent, "{\"name\": \"Winter sale\", \"product\": \"the winter collection\", "
                                        "\"offer\": \"25% off until Sunday\", "
                                        "\"call_to_action_url\": \"https://elsewhere.example/sale\"}",
                                 &campaign));
    CHECK(json_string(campaign, "id", id, sizeof id), "an id: %s", campaign);
    CHECK(contains(campaign, "\"state\":\"in_review\""), "waits for review: %s", campaign);
    CHECK(seen.reviews >= 1, "the review callback fired (%d)", seen.reviews);
    CHECK(seen.reentrant_ok == seen.reviews, "the callback could call into its own handle");
    mia_string_free(campaign);

    char *summary = NULL;
    CHECK_STATUS(mia_campaign_launch(agent, id, &summary), MIA_INVALID_STATE);
    char *list = NULL;
    CHECK_OK(mia_review_list(agent, &list));
    /* A human decides each item, by name: the first is rewritten (the rewrite must pass the
       guard outright), the others are rejected. */
    char review[128];
    int decided = 0;
    while (json_string(list, "id", review, sizeof review)) {
        char *after = NULL;
        if (decided == 0) {
            CHECK_STATUS(mia_review_edit(agent, review, "ana", "Sale at https://elsewhere.example. "
                                         "Reply STOP to opt out.", &after), MIA_INVALID_INPUT);
            CHECK(contains(mia_last_error(), "content policy"), "says why: %s", mia_last_error());
            CHECK_STATUS(mia_review_edit(agent, review, NULL, "text", &after), MIA_NULL_POINTER);
            CHECK_OK(mia_review_edit(agent, review, "ana", "Our winter collection is 25% off until "
                                     "Sunday: https://shop.example/sale. Reply STOP to opt out.",
                                     &after));
        } else {
            CHECK_OK(mia_review_reject(agent, review, "ana", "one variant is enough", &after));
        }
        mia_string_free(after);
        CHECK_STATUS(mia_review_approve(agent, review, "ana", &after), MIA_INVALID_STATE);
        CHECK(after == NULL, "no campaign from a refused decision");
        decided++;
        mia_string_free(list);
        list = NULL;
        CHECK_OK(mia_review_list(agent, &list));
    }
    mia_string_free(list);
    CHECK(decided == 2, "two variants were reviewed (%d)", decided);

    CHECK_OK(mia_campaign_launch(agent, id, &summary));
    /* 20 with consent + the new opt-in - user-2 who stopped = 20 queued. */
    CHECK(contains(summary, "\"queued\":20"), "queued for consent only: %s", summary);
    CHECK(contains(summary, "\"withdrawn\":1"), "the STOP is honoured: %s", summary);
    mia_string_free(summary);

    char *run = NULL;
    CHECK_OK(mia_agent_run(agent, "{\"attribution_hours\": 24}", &run));
    CHECK(contains(run, "\"run\":{\"sent\":"), "run stats: %s", run);
    mia_string_free(run);
    CHECK(seen.sent >= 15 && seen.sent <= 20, "the event callback saw the sends (%d)", seen.sent);

    char *report = NULL;
    CHECK_OK(mia_campaign_report(agent, id, &report));
    CHECK(contains(report, "\"audience\":41"), "everyone accounted for: %s", report);
    CHECK(contains(report, "\"no_consent\":20"), "no consent, no message: %s", report);
    mia_string_free(report);

    CHECK_STATUS(mia_campaign_launch(agent, id, &summary), MIA_INVALID_STATE);

    /* A click reported by the host, about the contact's message of this campaign. */
    char click[256];
    snprintf(click, sizeof click, "{\"kind\": \"click\", \"contact\": \"user-4\", \"campaign\": \"%s\"}", id);
    MiaStatus s = mia_inbound_record(agent, click, &stats);
    CHECK(s == MIA_OK || s == MIA_NOT_FOUND, "a click is recorded, or its message was not sent: %s",
          mia_status_name(s));
    mia_string_free(stats);

    test_threads(agent);

    CHECK_OK(mia_agent_free(agent));
    /* Use after free and double free are detected, never undefined behaviour. */
    char *out = NULL;
    CHECK_STATUS(mia_campaign_report(agent, id, &out), MIA_CLOSED_HANDLE);
    CHECK_STATUS(mia_agent_run(agent, NULL, &out), MIA_CLOSED_HANDLE);
    CHECK_STATUS(mia_agent_set_event_callback(agent, NULL, NULL), MIA_CLOSED_HANDLE);
    CHECK_STATUS(mia_agent_free(agent), MIA_CLOSED_HANDLE);
    CHECK(out == NULL, "no result from a closed handle");

    /* A SQLite store keeps its data across handles. */
    char config[1024];
    snprintf(config, sizeof config,
             "{\"store\": \"%s/mia.db\", \"seed\": 1, \"start\": \"2026-12-01T12:00:00Z\"}", scratch);
    MiaAgent *first = NULL, *second = NULL;
    CHECK_OK(mia_agent_new(config, &first));
    add_people(first, 4);
    CHECK_OK(mia_agent_free(first));
    CHECK_OK(mia_agent_new(config, &second));
    CHECK_OK(mia_campaign_create(second, "{\"name\": \"Tea\", \"product\": \"green tea\", \"offer\": \"10% off\"}",
                                 &campaign));
    CHECK(json_string(campaign, "id", id, sizeof id), "an id: %s", campaign);
    mia_string_free(campaign);
    CHECK_OK(mia_campaign_launch(second, id, &summary));
    CHECK(contains(summary, "\"queued\":2"), "contacts and consent survived: %s", summary);
    mia_string_free(summary);
    CHECK_OK(mia_agent_free(second));
}

int main(int argc, char **argv) {
    const char *scratch = argc > 1 ? argv[1] : ".";
    test_errors_without_an_agent();
    test_scan();
    test_bandit();
    test_campaign(scratch);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
