/*
 * test_think.c - the choice among samples (src/server/think.c): answer
 * extraction (the last number with its sign rules and canonical spelling,
 * regex captures, JSON fields, whole texts, and texts with no answer), the
 * majority vote (ties by log-probability then by order, samples without an
 * answer, all answers different), best-of-n by log-probability and by
 * verifier score (NaN lowest), the confidence, and refused specs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/think.h"

static char *ex(const char *spec, const char *text) {
    think_extractor x;
    char err[256];
    if (think_extractor_init(&x, spec, err, sizeof err)) {
        fprintf(stderr, "spec %s: %s\n", spec, err);
        return NULL;
    }
    char *a = think_extract(&x, text, strlen(text));
    think_extractor_free(&x);
    return a;
}

static void expect(const char *spec, const char *text, const char *want) {
    char *got = ex(spec, text);
    bool ok = want ? got && !strcmp(got, want) : got == NULL;
    CHECK(ok, "%s on \"%s\": got %s%s%s, want %s", spec, text, got ? "\"" : "", got ? got : "NULL",
          got ? "\"" : "", want ? want : "NULL");
    free(got);
}

static void test_extract(void) {
    const char *sol = "47+385=432\n432-96=336\n336+218=554\nA: 554\n";
    expect("last_number", sol, "554");
    expect(NULL, sol, "554");
    expect("last_number", "793-734=59", "59");
    expect("last_number", "so x = -12.", "-12");
    expect("last_number", "-7", "-7");
    expect("last_number", "It costs 1,250 dollars", "1250");
    expect("last_number", "pi is 3.140", "3.14");
    expect("last_number", "the answer is 042", "42");
    expect("last_number", "2.0 apples", "2");
    expect("last_number", "-0", "0");
    expect("last_number", "list 1,2,3", "3");
    expect("last_number", "no digits here", NULL);
    expect("last_number", "", NULL);
    expect("regex:A: (-?[0-9]+)", sol, "554");
    expect("regex:A: (-?[0-9]+)", "A: 1\nA: 2\n", "2"); /* the last match */
    expect("regex:[0-9]+=", "3+4=7 ", "4=");            /* no group: the whole match (trimmed) */
    expect("regex:A: ([0-9]+)", "no answer line", NULL);
    expect("regex:answer is ([a-z]+)", "the answer is Paris or answer is rome", "rome");
    expect("json:answer", "Sure: {\"answer\": 42, \"why\": \"...\"} done", "42");
    expect("json:answer", "{\"answer\": \" Paris \"}", "Paris");
    expect("json:result.value", "{\"result\": {\"value\": \"007\"}}", "7");
    expect("json:answer", "{\"answer\": 2.50}", "2.5");
    expect("json:answer", "{\"answer\": true}", "true");
    expect("json:answer", "{\"other\": 1}", NULL);
    expect("json:answer", "{broken json", NULL);
    expect("json:answer", "{not json} {\"answer\": [1,2]}", "[1,2]");
    expect("text", "  Paris \n", "Paris");
    expect("text", " \n ", NULL);

    think_extractor x;
    char err[256];
    CHECK(think_extractor_init(&x, "regex:(unclosed", err, sizeof err) == -1 && strstr(err, "compile"),
          "a bad regex is refused: %s", err);
    CHECK(think_extractor_init(&x, "first_word", err, sizeof err) == -1 && strstr(err, "first_word"),
          "an unknown extraction is refused: %s", err);
    CHECK(think_extractor_init(&x, "json:", err, sizeof err) == -1, "json without a field is refused");
}

#define K(...) ((think_candidate[]){__VA_ARGS__})
#define C(a, lp, sc) \
    { a, lp, sc }

static void test_choose(void) {
    think_tally t[THINK_MAX_SAMPLES];
    /* a plain majority: 3 of 5 say 7, the representative is its best sample */
    think_candidate c1[] = {C("7", -0.5, NAN), C("8", -0.1, NAN), C("7", -0.2, NAN), C("9", -0.3, NAN),
                            C("7", -0.9, NAN)};
    think_result r = think_choose(c1, 5, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 2 && !strcmp(r.answer, "7") && r.votes == 3, "majority: chose %d (%s, %d votes)",
          r.chosen, r.answer, r.votes);
    CHECK(fabs(r.confidence - 0.6) < 1e-12, "confidence 3/5: %g", r.confidence);
    CHECK(r.n_tally == 3 && !strcmp(t[0].answer, "7") && t[0].votes == 3, "tally order");
    /* 8 (lp -0.1) before 9 (lp -0.3) at one vote each */
    CHECK(!strcmp(t[1].answer, "8") && !strcmp(t[2].answer, "9"), "tally ties by log-probability");
    /* best-of-n by log-probability: sample 1; its answer had one vote */
    r = think_choose(c1, 5, THINK_SELECT_LOGPROB, t);
    CHECK(r.chosen == 1 && !strcmp(r.answer, "8") && r.votes == 1 && fabs(r.confidence - 0.2) < 1e-12,
          "logprob: chose %d", r.chosen);

    /* a tie of votes: the answer whose best sample is more likely */
    think_candidate c2[] = {C("1", -0.8, NAN), C("2", -0.3, NAN), C("1", -0.7, NAN), C("2", -0.6, NAN)};
    r = think_choose(c2, 4, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 1 && !strcmp(r.answer, "2") && r.votes == 2, "tie by log-probability: chose %d",
          r.chosen);
    /* a tie of votes and log-probabilities: the answer seen first */
    think_candidate c3[] = {C("5", -0.5, NAN), C("6", -0.5, NAN), C("6", -0.9, NAN), C("5", -0.9, NAN)};
    r = think_choose(c3, 4, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 0 && !strcmp(r.answer, "5"), "full tie goes to the first seen: chose %d", r.chosen);

    /* all different: every answer has one vote, the likeliest sample wins */
    think_candidate c4[] = {C("a", -2, NAN), C("b", -1, NAN), C("c", -3, NAN)};
    r = think_choose(c4, 3, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 1 && r.votes == 1 && fabs(r.confidence - 1.0 / 3) < 1e-12, "all different: chose %d",
          r.chosen);

    /* samples without an answer do not vote but count in the share */
    think_candidate c5[] = {C(NULL, -0.1, NAN), C("4", -0.9, NAN), C(NULL, -0.2, NAN), C("4", -0.8, NAN)};
    r = think_choose(c5, 4, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 3 && r.votes == 2 && r.n_no_answer == 2 && fabs(r.confidence - 0.5) < 1e-12,
          "no-answer samples: chose %d, %d votes, %d without", r.chosen, r.votes, r.n_no_answer);
    /* none has an answer: the likeliest sample, confidence 0 */
    think_candidate c6[] = {C(NULL, -0.4, NAN), C(NULL, -0.2, NAN), C(NULL, NAN, NAN)};
    r = think_choose(c6, 3, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 1 && r.answer == NULL && r.votes == 0 && r.confidence == 0 && r.n_tally == 0,
          "no answers at all: chose %d", r.chosen);
    /* NaN log-probabilities rank lowest */
    think_candidate c7[] = {C("1", NAN, NAN), C("2", -50, NAN)};
    r = think_choose(c7, 2, THINK_SELECT_LOGPROB, t);
    CHECK(r.chosen == 1, "NaN log-probability ranks last: chose %d", r.chosen);

    /* verifier: the highest score even against the majority; NaN lowest;
     * ties by log-probability */
    think_candidate c8[] = {C("3", -0.1, -2.0), C("3", -0.2, NAN), C("4", -0.9, -0.5), C("3", -0.3, -1.0)};
    r = think_choose(c8, 4, THINK_SELECT_VERIFIER, t);
    CHECK(r.chosen == 2 && !strcmp(r.answer, "4") && r.votes == 1 && fabs(r.confidence - 0.25) < 1e-12,
          "verifier: chose %d", r.chosen);
    think_candidate c9[] = {C("1", -0.5, -1.0), C("2", -0.2, -1.0), C("3", -0.1, NAN)};
    r = think_choose(c9, 3, THINK_SELECT_VERIFIER, t);
    CHECK(r.chosen == 1, "verifier tie by log-probability: chose %d", r.chosen);

    /* one sample: itself, confidence 1 */
    think_candidate c10[] = {C("12", -1, NAN)};
    r = think_choose(c10, 1, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == 0 && r.confidence == 1.0, "one sample");
    r = think_choose(c10, 0, THINK_SELECT_VOTE, t);
    CHECK(r.chosen == -1 && r.answer == NULL, "no samples");

    /* the same input always gives the same output, whatever the order of
     * calls (nothing is kept between them) */
    think_result a = think_choose(c2, 4, THINK_SELECT_VOTE, t), b = think_choose(c2, 4, THINK_SELECT_VOTE, t);
    CHECK(a.chosen == b.chosen && a.votes == b.votes, "deterministic");
}

static void test_names(void) {
    CHECK(think_select_from_name("vote") == THINK_SELECT_VOTE, "vote");
    CHECK(think_select_from_name("logprob") == THINK_SELECT_LOGPROB, "logprob");
    CHECK(think_select_from_name("verifier") == THINK_SELECT_VERIFIER, "verifier");
    CHECK(think_select_from_name("best") == -1 && think_select_from_name(NULL) == -1, "unknown select");
    CHECK(think_effort_samples("minimal") == 1 && think_effort_samples("low") == 4 &&
              think_effort_samples("medium") == 16 && think_effort_samples("high") == 64,
          "effort mapping");
    CHECK(think_effort_samples("max") == -1, "unknown effort");
    float lg[4] = {1, 2, 3, 4};
    double lse = log(exp(1) + exp(2) + exp(3) + exp(4));
    CHECK(fabs(think_token_logprob(lg, 4, 2) - (3 - lse)) < 1e-9, "token logprob");
}

int main(void) {
    test_extract();
    test_choose();
    test_names();
    return check_summary("test_think");
}
