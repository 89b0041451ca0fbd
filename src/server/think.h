/*
 * think.h - spending more compute at answer time: draw several samples of
 * one prompt, then choose one answer among them (self-consistency, best-of-n).
 * `grok serve` (think requests) and `grok run --samples` share this code:
 *
 *   extraction  what a sample's final answer is: the last number, a regex
 *               capture, a JSON field, or the whole text;
 *   selection   majority vote over the extracted answers, best-of-n by the
 *               model's mean token log-probability, or best-of-n by a
 *               verifier model's score;
 *   verifier    a second model that scores each candidate: the
 *               log-probability of a judgement text ("yes") after the
 *               question, the candidate and a suffix ("\nV:"), or without
 *               a judgement the mean log-probability of the candidate
 *               given the question.
 * docs/think.md describes the rules (ties, no answer, confidence).
 */
#ifndef GROK_THINK_H
#define GROK_THINK_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grok.h"

#define THINK_MAX_SAMPLES 64

typedef enum { THINK_SELECT_VOTE, THINK_SELECT_LOGPROB, THINK_SELECT_VERIFIER } think_select;
typedef enum {
    THINK_EXTRACT_LAST_NUMBER,
    THINK_EXTRACT_REGEX,
    THINK_EXTRACT_JSON,
    THINK_EXTRACT_TEXT
} think_extract_kind;

/* Names as the API and the flags spell them ("vote", "logprob",
 * "verifier"); -1 for an unknown name. */
int think_select_from_name(const char *name);
const char *think_select_name(think_select s);

/* reasoning_effort (OpenAI's field): "minimal", "low", "medium", "high" to
 * a number of samples (1, 4, 16, 64); -1 for an unknown name. */
int think_effort_samples(const char *effort);

typedef struct {
    think_extract_kind kind;
    char spec[256]; /* as given: "last_number", "regex:...", "json:a.b", "text" */
    regex_t re;     /* THINK_EXTRACT_REGEX */
    bool re_ok;
    const char *path; /* THINK_EXTRACT_JSON: into spec */
} think_extractor;

/* Parses an extraction spec: "last_number" (or NULL), "text", "regex:ERE"
 * (POSIX extended; the last match's group 1, or the whole match without a
 * group), "json:FIELD[.FIELD...]" (from the first JSON object in the text).
 * Returns 0, or -1 with err. */
int think_extractor_init(think_extractor *x, const char *spec, char *err, size_t err_size);
void think_extractor_free(think_extractor *x);
/* The answer in text[0..len) (malloc'd, canonical: numbers without a sign
 * of +, leading zeros or trailing fraction zeros; text trimmed), or NULL
 * when there is none (or out of memory). */
char *think_extract(const think_extractor *x, const char *text, size_t len);

/* One sample as selection sees it. */
typedef struct {
    const char *answer;  /* extracted, or NULL */
    double mean_logprob; /* mean log-probability of its tokens under the model; NAN: none */
    double score;        /* the verifier's; NAN: not scored */
} think_candidate;

/* Distinct answers with their votes, most votes first (ties: the order
 * selection uses). */
typedef struct {
    const char *answer;
    int votes;
    int first; /* lowest sample index giving it */
} think_tally;

typedef struct {
    int chosen;         /* sample index (-1 only when k == 0) */
    const char *answer; /* the chosen sample's answer (NULL: none could be extracted) */
    int votes;          /* samples whose answer equals it */
    double confidence;  /* votes / k: the vote share */
    int n_no_answer;    /* samples without an extractable answer */
    int n_tally;        /* distinct answers, in tally[0..n_tally) */
} think_result;

/* Chooses among k candidates; tally (room for k) receives the vote count.
 *  vote:     the answer with the most votes; ties go to the answer whose
 *            best candidate has the higher mean log-probability, then to
 *            the one seen first. Its representative is its candidate of
 *            the highest mean log-probability (then the lowest index).
 *            When no sample has an answer, the best by log-probability.
 *  logprob:  the highest mean log-probability (NaN lowest; ties: lowest index).
 *  verifier: the highest verifier score, ties by mean log-probability,
 *            then lowest index.
 * Whatever the rule, votes and confidence are those of the chosen answer. */
think_result think_choose(const think_candidate *c, int k, think_select how, think_tally *tally);

/* The model's log-probability of token tok after logits [n_vocab]
 * (log-softmax at temperature 1, no filters). */
double think_token_logprob(const float *logits, int64_t n_vocab, int32_t tok);

/* ---- verifier ---- */
typedef struct think_verifier think_verifier;

/* Loads the verifier model (its own vocabulary, which may differ from the
 * generator's). suffix (may be NULL: "") is appended after the candidate;
 * yes (NULL or "": none) is the judgement whose log-probability is the
 * score; without it the score is the mean log-probability of the
 * candidate's tokens given the prompt. pool (not owned) runs its steps;
 * n_ctx bounds prompt + candidate + suffix + judgement. */
think_verifier *think_verifier_load(const char *path, const char *suffix, const char *yes,
                                    grok_threadpool *pool, int64_t n_ctx, char *err, size_t err_size);
void think_verifier_free(think_verifier *v);
/* Scores k candidates of one prompt (texts as generated, without the
 * prompt) into scores[k]: the prompt's tokens are computed once and copied
 * into every candidate's sequence, the candidates decoded in batches. A
 * candidate that does not fit the verifier's context scores NAN. Returns
 * 0, or -1 with err when the model fails. */
int think_verifier_score(think_verifier *v, const char *prompt, size_t prompt_len, const char *const *cands,
                         const size_t *cand_lens, int k, double *scores, char *err, size_t err_size);

#endif
