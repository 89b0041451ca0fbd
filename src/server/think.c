/*
 * think.c - answer extraction, the choice among samples (vote, best-of-n by
 * log-probability or by a verifier) and the verifier's scoring, shared by
 * `grok serve` and `grok run --samples` (think.h has the contract).
 *
 * Everything here is deterministic: the same candidates give the same
 * choice on every run and machine, ties being broken by fixed rules rather
 * than by the order of a hash table or of floating-point noise.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "server/think.h"

int think_select_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "vote")) return THINK_SELECT_VOTE;
    if (!strcmp(name, "logprob")) return THINK_SELECT_LOGPROB;
    if (!strcmp(name, "verifier")) return THINK_SELECT_VERIFIER;
    return -1;
}

const char *think_select_name(think_select s) {
    switch (s) {
    case THINK_SELECT_LOGPROB: return "logprob";
    case THINK_SELECT_VERIFIER: return "verifier";
    default: return "vote";
    }
}

int think_effort_samples(const char *effort) {
    if (!effort) return -1;
    if (!strcmp(effort, "minimal")) return 1;
    if (!strcmp(effort, "low")) return 4;
    if (!strcmp(effort, "medium")) return 16;
    if (!strcmp(effort, "high")) return 64;
    return -1;
}

/* ---- extraction ---- */

int think_extractor_init(think_extractor *x, const char *spec, char *err, size_t err_size) {
    memset(x, 0, sizeof *x);
    if (!spec) spec = "last_number";
    if (strlen(spec) >= sizeof x->spec) {
        snprintf(err, err_size, "the extraction spec is longer than %zu bytes", sizeof x->spec - 1);
        return -1;
    }
    snprintf(x->spec, sizeof x->spec, "%s", spec);
    if (!strcmp(spec, "last_number")) {
        x->kind = THINK_EXTRACT_LAST_NUMBER;
    } else if (!strcmp(spec, "text")) {
        x->kind = THINK_EXTRACT_TEXT;
    } else if (!strncmp(spec, "regex:", 6)) {
        x->kind = THINK_EXTRACT_REGEX;
        int rc = regcomp(&x->re, spec + 6, REG_EXTENDED);
        if (rc) {
            char msg[128];
            regerror(rc, &x->re, msg, sizeof msg);
            snprintf(err, err_size, "the regex '%s' does not compile: %s", spec + 6, msg);
            return -1;
        }
        x->re_ok = true;
    } else if (!strncmp(spec, "json:", 5) && spec[5]) {
        x->kind = THINK_EXTRACT_JSON;
        x->path = x->spec + 5;
    } else {
        snprintf(err, err_size, "'%s' is not an extraction: use last_number, text, regex:ERE or json:FIELD",
                 spec);
        return -1;
    }
    return 0;
}

void think_extractor_free(think_extractor *x) {
    if (x && x->re_ok) regfree(&x->re);
    if (x) x->re_ok = false;
}

static char *dup_range(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    memcpy(o, s, n);
    o[n] = '\0';
    return o;
}

/* s[0..n) without surrounding whitespace, malloc'd; NULL when empty. */
static char *trimmed(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return n ? dup_range(s, n) : NULL;
}

/* Whether s is a decimal number: [+-]digits[,ddd...][.digits]. */
static bool is_number(const char *s) {
    if (*s == '+' || *s == '-') s++;
    if (!isdigit((unsigned char)*s)) return false;
    while (isdigit((unsigned char)*s) || (*s == ',' && isdigit((unsigned char)s[1]))) s++;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s)) return false;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == '\0';
}

/* A number's canonical spelling in place: no '+', no thousands commas, no
 * leading zeros, no trailing fraction zeros, "0" for minus zero; so that
 * "042", "42.0" and "+42" vote together. */
static void canonical_number(char *s) {
    char *w = s, *r = s;
    bool neg = *r == '-';
    if (*r == '+' || *r == '-') r++;
    char digits[512];
    size_t n = 0;
    for (; *r && n + 1 < sizeof digits; r++)
        if (*r != ',') digits[n++] = *r;
    digits[n] = '\0';
    char *dot = strchr(digits, '.');
    if (dot) {
        char *e = digits + n;
        while (e > dot + 1 && e[-1] == '0') *--e = '\0';
        if (e == dot + 1) *dot = '\0';
    }
    char *d = digits;
    while (d[0] == '0' && isdigit((unsigned char)d[1])) d++;
    bool zero = !strcmp(d, "0");
    if (neg && !zero) *w++ = '-';
    strcpy(w, d);
}

static char *canonical(char *s) {
    if (s && is_number(s)) canonical_number(s);
    return s;
}

/* t[i] is a comma between thousands: exactly three digits follow */
static bool thousands_comma(const char *t, size_t len, size_t i) {
    if (t[i] != ',' || i == 0 || !isdigit((unsigned char)t[i - 1]) || i + 3 >= len + 1) return false;
    for (size_t d = 1; d <= 3; d++)
        if (i + d >= len || !isdigit((unsigned char)t[i + d])) return false;
    return i + 4 >= len || !isdigit((unsigned char)t[i + 4]);
}

static char *last_number(const char *t, size_t len) {
    size_t best = 0, best_len = 0;
    bool found = false;
    for (size_t i = 0; i < len;) {
        if (!isdigit((unsigned char)t[i])) {
            i++;
            continue;
        }
        size_t s = i;
        /* a minus sign belongs to the number unless it is an operator
         * between two operands ("793-734": 734, not -734) */
        if (s > 0 && t[s - 1] == '-' && (s < 2 || !isalnum((unsigned char)t[s - 2])) &&
            (s < 2 || t[s - 2] != ')'))
            s--;
        while (i < len && (isdigit((unsigned char)t[i]) || thousands_comma(t, len, i))) i++;
        if (i + 1 < len && t[i] == '.' && isdigit((unsigned char)t[i + 1])) {
            i++;
            while (i < len && isdigit((unsigned char)t[i])) i++;
        }
        best = s, best_len = i - s, found = true;
    }
    return found ? canonical(dup_range(t + best, best_len)) : NULL;
}

static char *regex_answer(const think_extractor *x, const char *t, size_t len) {
    char *z = dup_range(t, len); /* regexec wants a NUL-terminated text */
    if (!z) return NULL;
    regmatch_t m[2], last[2];
    bool found = false;
    size_t off = 0;
    while (off <= len && regexec(&x->re, z + off, 2, m, off ? REG_NOTBOL : 0) == 0) {
        for (int g = 0; g < 2; g++)
            if (m[g].rm_so >= 0) m[g].rm_so += (regoff_t)off, m[g].rm_eo += (regoff_t)off;
        memcpy(last, m, sizeof m);
        found = true;
        off = (size_t)m[0].rm_eo + (m[0].rm_eo == m[0].rm_so); /* past an empty match too */
    }
    char *out = NULL;
    if (found) {
        const regmatch_t *g = x->re.re_nsub >= 1 && last[1].rm_so >= 0 ? &last[1] : &last[0];
        out = canonical(trimmed(z + g->rm_so, (size_t)(g->rm_eo - g->rm_so)));
    }
    free(z);
    return out;
}

static char *json_value_text(const cJSON *v) {
    if (cJSON_IsString(v)) return canonical(trimmed(v->valuestring, strlen(v->valuestring)));
    if (cJSON_IsNumber(v)) {
        char b[64];
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(b, sizeof b, "%.0f", d);
        else
            snprintf(b, sizeof b, "%.17g", d);
        return canonical(dup_range(b, strlen(b)));
    }
    if (cJSON_IsTrue(v)) return dup_range("true", 4);
    if (cJSON_IsFalse(v)) return dup_range("false", 5);
    if (cJSON_IsNull(v)) return NULL;
    return cJSON_PrintUnformatted(v);
}

/* The value at a dotted path of the first JSON object in the text that
 * parses (the text may have words around it). */
static char *json_answer(const think_extractor *x, const char *t, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (t[i] != '{') continue;
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(t + i, len - i, &end, false);
        if (!root) continue;
        const cJSON *v = root;
        char key[256];
        for (const char *p = x->path; v && *p;) {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            snprintf(key, sizeof key, "%.*s", (int)n, p);
            v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, key) : NULL;
            p += n + (dot != NULL);
        }
        char *out = v ? json_value_text(v) : NULL;
        cJSON_Delete(root);
        return out;
    }
    return NULL;
}

char *think_extract(const think_extractor *x, const char *text, size_t len) {
    switch (x->kind) {
    case THINK_EXTRACT_LAST_NUMBER: return last_number(text, len);
    case THINK_EXTRACT_REGEX: return regex_answer(x, text, len);
    case THINK_EXTRACT_JSON: return json_answer(x, text, len);
    case THINK_EXTRACT_TEXT: return trimmed(text, len);
    }
    return NULL;
}

/* ---- selection ---- */

/* a > b for scores where NaN is the lowest */
static bool higher(double a, double b) {
    if (isnan(a)) return false;
    if (isnan(b)) return true;
    return a > b;
}

static bool same(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* i beats j by log-probability (then by the lower index) */
static bool better_lp(const think_candidate *c, int i, int j) {
    if (higher(c[i].mean_logprob, c[j].mean_logprob)) return true;
    if (higher(c[j].mean_logprob, c[i].mean_logprob)) return false;
    return i < j;
}

static bool better_score(const think_candidate *c, int i, int j) {
    if (higher(c[i].score, c[j].score)) return true;
    if (higher(c[j].score, c[i].score)) return false;
    return better_lp(c, i, j);
}

think_result think_choose(const think_candidate *c, int k, think_select how, think_tally *tally) {
    think_result res = {.chosen = -1};
    if (k > THINK_MAX_SAMPLES) k = THINK_MAX_SAMPLES;
    if (k <= 0) return res;
    /* the tally: per distinct answer its votes, first index and best sample */
    int rep[THINK_MAX_SAMPLES];
    int n = 0;
    for (int i = 0; i < k; i++) {
        if (!c[i].answer) {
            res.n_no_answer++;
            continue;
        }
        int j = 0;
        while (j < n && !same(tally[j].answer, c[i].answer)) j++;
        if (j == n) {
            tally[n] = (think_tally){c[i].answer, 0, i};
            rep[n++] = i;
        }
        tally[j].votes++;
        if (better_lp(c, i, rep[j])) rep[j] = i;
    }
    /* most votes first; then the better best sample; then seen first
     * (insertion sort: stable, and k is small) */
    for (int a = 1; a < n; a++) {
        const think_tally t = tally[a];
        const int r = rep[a];
        int b = a;
        while (b > 0) {
            const think_tally *u = &tally[b - 1];
            const int ur = rep[b - 1];
            bool before = t.votes > u->votes ||
                          (t.votes == u->votes &&
                           (higher(c[r].mean_logprob, c[ur].mean_logprob) ||
                            (!higher(c[ur].mean_logprob, c[r].mean_logprob) && t.first < u->first)));
            if (!before) break;
            tally[b] = tally[b - 1];
            rep[b] = rep[b - 1];
            b--;
        }
        tally[b] = t;
        rep[b] = r;
    }
    res.n_tally = n;
    int chosen = 0;
    if (how == THINK_SELECT_VOTE && n > 0) {
        chosen = rep[0];
    } else if (how == THINK_SELECT_VERIFIER) {
        for (int i = 1; i < k; i++)
            if (better_score(c, i, chosen)) chosen = i;
    } else { /* logprob, and a vote where no sample has an answer */
        for (int i = 1; i < k; i++)
            if (better_lp(c, i, chosen)) chosen = i;
    }
    res.chosen = chosen;
    res.answer = c[chosen].answer;
    for (int j = 0; j < n && res.answer; j++)
        if (same(tally[j].answer, res.answer)) res.votes = tally[j].votes;
    res.confidence = (double)res.votes / (double)k;
    return res;
}

double think_token_logprob(const float *logits, int64_t n_vocab, int32_t tok) {
    float mx = logits[0];
    for (int64_t v = 1; v < n_vocab; v++) mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0;
    for (int64_t v = 0; v < n_vocab; v++) sum += exp((double)logits[v] - (double)mx);
    return (double)logits[tok] - ((double)mx + log(sum));
}

/* ---- verifier ---- */

struct think_verifier {
    grok_model *m;
    const grok_tokenizer *tok;
    grok_runner *r;
    grok_seq **seqs;
    int n_seqs;
    int64_t n_ctx, n_vocab, n_batch;
    char *suffix, *yes;
    float *rows; /* [n_batch][n_vocab] logits of the scored positions of a step */
};

think_verifier *think_verifier_load(const char *path, const char *suffix, const char *yes,
                                    grok_threadpool *pool, int64_t n_ctx, char *err, size_t err_size) {
    think_verifier *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    char e[GROK_ERR_SIZE];
    if (!(v->m = grok_model_load(path, e, sizeof e))) {
        snprintf(err, err_size, "--verifier: %s", e);
        goto fail;
    }
    if (!(v->tok = grok_model_tokenizer(v->m))) {
        snprintf(err, err_size, "--verifier: %s has no vocabulary (tokenizer.ggml.*)", path);
        goto fail;
    }
    const grok_hparams *hp = grok_model_hparams(v->m);
    v->n_vocab = hp->n_vocab;
    v->n_ctx = n_ctx > 0 && n_ctx < hp->n_ctx_train ? n_ctx : hp->n_ctx_train;
    /* the scored rows of a step are kept whole: a small batch bounds them
     * (64 x 131072 x 4 bytes = 32 MiB for Grok-1's vocabulary) */
    v->n_batch = v->n_ctx < 64 ? v->n_ctx : 64;
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = pool;
    rp.n_batch = v->n_batch;
    if (!(v->r = grok_runner_create(v->m, &rp, e, sizeof e))) {
        snprintf(err, err_size, "--verifier: %s", e);
        goto fail;
    }
    v->suffix = strdup(suffix ? suffix : "");
    v->yes = yes && yes[0] ? strdup(yes) : NULL;
    v->rows = malloc((size_t)v->n_batch * (size_t)v->n_vocab * sizeof(float));
    if (!v->suffix || (yes && yes[0] && !v->yes) || !v->rows) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    return v;
fail:
    think_verifier_free(v);
    return NULL;
}

void think_verifier_free(think_verifier *v) {
    if (!v) return;
    for (int i = 0; i < v->n_seqs; i++) grok_seq_free(v->seqs[i]);
    free(v->seqs);
    grok_runner_free(v->r);
    grok_model_free(v->m);
    free(v->suffix);
    free(v->yes);
    free(v->rows);
    free(v);
}

static int ensure_seqs(think_verifier *v, int k, char *err, size_t err_size) {
    if (k <= v->n_seqs) return 0;
    grok_seq **s = realloc(v->seqs, (size_t)k * sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    v->seqs = s;
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = v->n_ctx;
    while (v->n_seqs < k) {
        if (!(v->seqs[v->n_seqs] = grok_seq_create(v->m, &sp, err, err_size))) return -1;
        v->n_seqs++;
    }
    return 0;
}

static size_t common_len(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* One candidate's work: the tokens to read, the first scored token. */
typedef struct {
    int32_t *ids;
    size_t n;     /* tokens; positions [0, n - 1) are fed */
    size_t first; /* ids[first..n) are scored */
    double sum;
    int64_t scored;
    bool skip;
} vjob;

/* The text a + b + c tokenized, malloc'd (BOS as the vocabulary says). */
static int32_t *tokenize3(const grok_tokenizer *t, const char *a, size_t na, const char *b, size_t nb,
                          const char *c, size_t *n) {
    size_t nc = c ? strlen(c) : 0;
    char *s = malloc(na + nb + nc + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    if (nc) memcpy(s + na + nb, c, nc);
    int32_t *ids = grok_tokenize(t, s, na + nb + nc, true, n);
    free(s);
    return ids;
}

int think_verifier_score(think_verifier *v, const char *prompt, size_t prompt_len, const char *const *cands,
                         const size_t *cand_lens, int k, double *scores, char *err, size_t err_size) {
    if (k <= 0) return 0;
    int rc = -1;
    vjob *jb = calloc((size_t)k, sizeof *jb);
    grok_seq **seqs = calloc((size_t)k, sizeof *seqs);
    const int32_t **toks = calloc((size_t)k, sizeof *toks);
    int64_t *ns = calloc((size_t)k, sizeof *ns);
    float **alls = calloc((size_t)k, sizeof *alls);
    int *who = calloc((size_t)k, sizeof *who);
    int64_t *pos0 = calloc((size_t)k, sizeof *pos0);
    if (!jb || !seqs || !toks || !ns || !alls || !who || !pos0) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    if (ensure_seqs(v, k, err, err_size)) goto done;
    /* judge: score the judgement after prompt + candidate + suffix;
     * likelihood: score the candidate after the prompt */
    char *tail = NULL;
    if (v->yes) {
        size_t ns1 = strlen(v->suffix), ny = strlen(v->yes);
        if (!(tail = malloc(ns1 + ny + 1))) {
            snprintf(err, err_size, "out of memory");
            goto done;
        }
        memcpy(tail, v->suffix, ns1);
        memcpy(tail + ns1, v->yes, ny + 1);
    }
    for (int i = 0; i < k; i++) {
        size_t nb;
        int32_t *base = v->yes ? tokenize3(v->tok, prompt, prompt_len, cands[i], cand_lens[i], v->suffix, &nb)
                               : tokenize3(v->tok, prompt, prompt_len, "", 0, NULL, &nb);
        jb[i].ids = tokenize3(v->tok, prompt, prompt_len, cands[i], cand_lens[i], tail, &jb[i].n);
        if (!base || !jb[i].ids) {
            free(base);
            free(tail);
            snprintf(err, err_size, "out of memory");
            goto done;
        }
        /* what the base text does not already spell is scored (the longest
         * common prefix, should a piece merge across the boundary) */
        jb[i].first = common_len(base, nb, jb[i].ids, jb[i].n);
        if (jb[i].first == 0) jb[i].first = 1; /* the first token has nothing before it */
        free(base);
        jb[i].skip = jb[i].first >= jb[i].n || (int64_t)jb[i].n - 1 > v->n_ctx;
    }
    free(tail);
    /* the prefix every candidate shares (the prompt, at least) is computed
     * once, in the first candidate's sequence, and copied to the others */
    int lead = -1;
    size_t shared = 0;
    for (int i = 0; i < k; i++) {
        if (jb[i].skip) continue;
        if (lead < 0) {
            lead = i;
            shared = jb[i].first - 1;
        }
        size_t c = common_len(jb[lead].ids, jb[lead].n, jb[i].ids, jb[i].n);
        if (c < shared) shared = c;
        if (jb[i].first - 1 < shared) shared = jb[i].first - 1;
    }
    for (int i = 0; i < k; i++) grok_seq_truncate(v->seqs[i], 0);
    if (lead >= 0 && shared > 0) {
        grok_seq *ls = v->seqs[lead];
        if (grok_runner_decode(v->r, ls, jb[lead].ids, (int64_t)shared, NULL, err, err_size)) goto done;
        for (int i = 0; i < k; i++)
            if (!jb[i].skip && i != lead && grok_seq_copy(v->seqs[i], ls, (int64_t)shared, err, err_size))
                goto done;
    }
    /* the rest in batched steps; the rows of scored positions are kept */
    for (;;) {
        int64_t n_seqs = 0, total = 0, rows = 0;
        for (int i = 0; i < k && total < v->n_batch; i++) {
            if (jb[i].skip) continue;
            const int64_t pos = grok_seq_pos(v->seqs[i]), end = (int64_t)jb[i].n - 1;
            if (pos >= end) continue;
            int64_t take = end - pos, budget = v->n_batch - total;
            const int64_t first_row = (int64_t)jb[i].first - 1; /* the row predicting ids[first] */
            bool scored = pos >= first_row;
            if (!scored && take > first_row - pos) take = first_row - pos; /* up to the scored part */
            if (take > budget) take = budget;
            if (scored && take > v->n_batch - rows) take = v->n_batch - rows;
            if (take <= 0) continue;
            seqs[n_seqs] = v->seqs[i];
            toks[n_seqs] = jb[i].ids + pos;
            ns[n_seqs] = take;
            alls[n_seqs] = scored ? v->rows + (size_t)rows * (size_t)v->n_vocab : NULL;
            who[n_seqs] = i;
            if (scored) rows += take;
            total += take;
            n_seqs++;
        }
        if (n_seqs == 0) break;
        for (int64_t s = 0; s < n_seqs; s++) pos0[s] = grok_seq_pos(seqs[s]);
        if (grok_decode_multi_logits(v->r, seqs, toks, ns, alls, n_seqs, err, err_size)) goto done;
        for (int64_t s = 0; s < n_seqs; s++) {
            if (!alls[s]) continue;
            vjob *j = &jb[who[s]];
            for (int64_t t = 0; t < ns[s]; t++) { /* row t predicts ids[pos0 + t + 1] */
                j->sum += think_token_logprob(alls[s] + (size_t)t * (size_t)v->n_vocab, v->n_vocab,
                                              j->ids[pos0[s] + t + 1]);
                j->scored++;
            }
        }
    }
    for (int i = 0; i < k; i++) {
        if (jb[i].skip || jb[i].scored == 0)
            scores[i] = NAN;
        else
            scores[i] = v->yes ? jb[i].sum : jb[i].sum / (double)jb[i].scored;
    }
    rc = 0;
done:
    for (int i = 0; jb && i < k; i++) free(jb[i].ids);
    free(jb), free(seqs), free(toks), free(ns), free(alls), free(who), free(pos0);
    return rc;
}
