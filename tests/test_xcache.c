/*
 * test_xcache.c - the memory plans and the expert cache (src/model/
 * memplan.c, xcache.c): the logits through a cache of one slot, a few
 * slots and all slots, under every eviction policy, with and without
 * prefetch, are the bits of the fully packed run (the bundled trained
 * model, q8_0, whose routing is not uniform; and a random model whose f16
 * experts the cache holds in the file's layout); the cache's counters add
 * up; the policy simulator gives the hand-worked results on small traces;
 * size parsing and the plan's choice by the limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf_internal.h"
#include "model/model.h"

#define N_PROMPT 24
#define N_GEN 12

/* The packed file the runs map ("": none). */
static const char *g_pack_file = "";

/* Logits of a prompt decoded in one batch, then N_GEN greedy tokens one
 * at a time: [(N_PROMPT + N_GEN)][V]. */
static float *run(const char *path, const grok_memory_params *mp, grok_cache_stats *st,
                  grok_memory_plan *plan, int64_t *V) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    CHECK(m, "load %s: %s", path, err);
    if (!m) return NULL;
    grok_memory_params mq = *mp;
    mq.pack_file = g_pack_file;
    CHECK(grok_model_set_memory(m, &mq, err, sizeof err) == 0, "set memory: %s", err);
    grok_context_params cp = grok_context_default_params();
    cp.n_threads = 2;
    cp.n_ctx = 64;
    grok_context *c = grok_context_create(m, &cp, err, sizeof err);
    CHECK(c, "context: %s", err);
    if (!c) {
        grok_model_free(m);
        return NULL;
    }
    CHECK(grok_model_set_memory(m, mp, err, sizeof err) != 0,
          "set memory after the first context is refused");
    *plan = *grok_model_memory_plan(m);
    CHECK(strcmp(plan->pack_file, g_pack_file) == 0 || plan->kind == GROK_PLAN_MMAP,
          "packed file in use: '%s', want '%s'", plan->pack_file, g_pack_file);
    *V = grok_model_hparams(m)->n_vocab;
    float *out = malloc((size_t)(N_PROMPT + N_GEN) * (size_t)*V * sizeof(float));
    int32_t ids[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++) ids[i] = (int32_t)(4 + (i * 37) % (*V - 4));
    CHECK(grok_decode(c, ids, N_PROMPT, out, err, sizeof err) == 0, "decode: %s", err);
    for (int g = 0; g < N_GEN; g++) {
        const float *lg = grok_context_logits(c);
        int32_t best = 0;
        for (int64_t v = 1; v < *V; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        CHECK(grok_decode(c, &best, 1, NULL, err, sizeof err) == 0, "decode: %s", err);
        memcpy(out + (size_t)(N_PROMPT + g) * (size_t)*V, grok_context_logits(c), (size_t)*V * sizeof(float));
    }
    *st = grok_model_cache_stats(m);
    grok_context_free(c);
    grok_model_free(m);
    return out;
}

static void check_cache_bits(const char *path, const char *what) {
    grok_memory_params mp = grok_memory_default_params();
    mp.plan = GROK_PLAN_PACKED;
    grok_cache_stats st;
    grok_memory_plan plan;
    int64_t V = 0;
    float *ref = run(path, &mp, &st, &plan, &V);
    if (!ref) return;
    CHECK(plan.kind == GROK_PLAN_PACKED, "%s: forced packed plan, got %s", what, grok_plan_name(plan.kind));
    CHECK(st.lookups == 0, "%s: no cache, no lookups", what);
    const int64_t keys = plan.n_expert_keys;
    const size_t bytes = (size_t)(N_PROMPT + N_GEN) * (size_t)V * sizeof(float);
    struct {
        int64_t slots;
        grok_cache_policy pol;
        int prefetch, io;
        bool buffered;
    } cases[] = {{1, GROK_CACHE_LRU, 1, 2, false},    {1, GROK_CACHE_ARC, 0, 1, false},
                 {3, GROK_CACHE_LRU, 1, 2, false},    {3, GROK_CACHE_LFU, 2, 3, true},
                 {5, GROK_CACHE_ARC, 1, 2, false},    {keys / 2, GROK_CACHE_LFU, 2, 2, false},
                 {keys, GROK_CACHE_LRU, 1, 2, false}, {keys + 7, GROK_CACHE_ARC, 1, 1, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp = grok_memory_default_params();
        mp.plan = GROK_PLAN_CACHE;
        mp.cache_slots = cases[i].slots;
        mp.policy = cases[i].pol;
        mp.prefetch = cases[i].prefetch;
        mp.io_threads = cases[i].io;
        mp.buffered_io = cases[i].buffered;
        int64_t V2;
        float *got = run(path, &mp, &st, &plan, &V2);
        if (!got) continue;
        const int64_t want_slots = cases[i].slots < keys ? cases[i].slots : keys;
        CHECK(plan.kind == GROK_PLAN_CACHE && plan.cache_slots == want_slots,
              "%s: cache of %lld slots planned (%s, %lld)", what, (long long)want_slots,
              grok_plan_name(plan.kind), (long long)plan.cache_slots);
        CHECK(memcmp(ref, got, bytes) == 0,
              "%s: %lld slots, %s, prefetch %d, %d I/O threads%s: logits differ from the packed run", what,
              (long long)cases[i].slots, grok_cache_policy_name(cases[i].pol), cases[i].prefetch, cases[i].io,
              cases[i].buffered ? ", buffered" : "");
        CHECK(st.lookups == st.hits + st.late_hits + st.misses && st.lookups > 0,
              "%s: lookups %lld = hits %lld + late %lld + misses %lld", what, (long long)st.lookups,
              (long long)st.hits, (long long)st.late_hits, (long long)st.misses);
        /* each miss starts one read; a read not started by a prediction
         * serves a lookup (a late hit's queued read, or a re-read) */
        CHECK(st.misses <= st.reads - st.prefetches && st.reads - st.prefetches <= st.lookups,
              "%s: misses %lld <= demand reads %lld <= lookups %lld", what, (long long)st.misses,
              (long long)(st.reads - st.prefetches), (long long)st.lookups);
        /* every read brings at least the slot's bytes (O_DIRECT widens to 4 KiB) */
        CHECK(st.bytes_read >= st.reads * plan.expert_bytes, "%s: %lld bytes for %lld reads of %lld", what,
              (long long)st.bytes_read, (long long)st.reads, (long long)plan.expert_bytes);
        if (want_slots == keys) /* nothing is evicted: each key is read once at most */
            CHECK(st.reads <= keys, "%s: all slots: %lld reads of %lld keys", what, (long long)st.reads,
                  (long long)keys);
        if (!cases[i].prefetch)
            CHECK(st.prefetches == 0, "%s: no prefetch, %lld issued", what, (long long)st.prefetches);
        if (cases[i].prefetch && want_slots > 2)
            CHECK(st.predicted > 0 && st.predicted_right <= st.predicted,
                  "%s: predictions counted (%lld of %lld)", what, (long long)st.predicted_right,
                  (long long)st.predicted);
        free(got);
    }
    free(ref);
}

/* Hand-worked traces: one layer, four experts, one chosen per token. */
static void check_simulator(void) {
    const int32_t cyc[] = {0, 1, 2, 0, 1, 2};
    grok_cache_sim_result r = grok_cache_simulate(cyc, NULL, 6, 1, 4, 1, 2, GROK_CACHE_LRU, false, false);
    CHECK(r.lookups == 6 && r.hits == 0 && r.reads == 6, "LRU on a cycle of 3 in 2 slots: %lld hits",
          (long long)r.hits);
    r = grok_cache_simulate(cyc, NULL, 6, 1, 4, 1, 2, GROK_CACHE_LRU, false, true);
    /* MIN: 0 1 2(evicts 1) 0:hit 1(evicts 0) 2:hit */
    CHECK(r.hits == 2 && r.reads == 4, "MIN on the cycle: %lld hits, want 2", (long long)r.hits);
    /* 0 is used every other token; LRU and LFU keep it, hits on each reuse */
    const int32_t hot[] = {0, 1, 0, 2, 0, 3, 0, 1, 0, 2};
    r = grok_cache_simulate(hot, NULL, 10, 1, 4, 1, 2, GROK_CACHE_LFU, false, false);
    CHECK(r.hits == 4, "LFU keeps the hot key: %lld hits, want 4", (long long)r.hits);
    r = grok_cache_simulate(hot, NULL, 10, 1, 4, 1, 2, GROK_CACHE_ARC, false, false);
    CHECK(r.hits == 4, "ARC keeps the hot key: %lld hits, want 4", (long long)r.hits);
    /* a frequent key that LRU loses: 0 0 0, then a scan 1 2 3 1 2 3, then 0 */
    const int32_t scan[] = {0, 0, 0, 1, 2, 1, 2, 0};
    r = grok_cache_simulate(scan, NULL, 8, 1, 4, 1, 2, GROK_CACHE_LRU, false, false);
    CHECK(r.hits == 4, "LRU: 0 0 0 1 2 1 2 0 in 2 slots: %lld hits, want 4", (long long)r.hits);
    r = grok_cache_simulate(scan, NULL, 8, 1, 4, 1, 2, GROK_CACHE_LFU, false, false);
    CHECK(r.hits == 3, "LFU: 0 0 0 1 2 1 2 0 in 2 slots: %lld hits, want 3 (2 thrashes 1)",
          (long long)r.hits);
    /* prefetch of a correct prediction turns the miss into a hit: two
     * layers, layer 1 always predicted right */
    const int32_t ch[] = {0, 1, 2, 3, 0, 1};    /* [t][layer] */
    const int32_t pr[] = {-1, 1, -1, 3, -1, 1}; /* predictions for layer 1 */
    r = grok_cache_simulate(ch, pr, 3, 2, 4, 1, 8, GROK_CACHE_LRU, true, false);
    CHECK(r.lookups == 6 && r.hits == 4 && r.prefetch_reads == 2 && r.prefetch_used == 2,
          "prefetch: %lld hits (want 4), %lld prefetches (2), %lld used (2)", (long long)r.hits,
          (long long)r.prefetch_reads, (long long)r.prefetch_used);
}

/* The simulator's LRU, ARC and MIN against tests/cache_ref.py (the
 * policies from their papers, in Python) on skewed random traces with
 * bursts of reuse: one layer, one expert chosen per token, so that no
 * choice of the same layer is spared from eviction. */
static void check_policies_against_reference(void) {
    const char *src = getenv("GROK_SRC") ? getenv("GROK_SRC") : ".";
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    if (system("/usr/bin/python3 -c 'import collections' 2>/dev/null") != 0) {
        printf("SKIP part: no /usr/bin/python3 for the reference policies\n");
        return;
    }
    uint64_t st = 12345;
    for (int trial = 0; trial < 12; trial++) {
        const int E = trial % 3 == 0 ? 8 : trial % 3 == 1 ? 16 : 40;
        const int c = 2 + (trial * 7) % (E - 2);
        int32_t keys[1500];
        char path[4096];
        snprintf(path, sizeof path, "%s/trace_%d.txt", tmp, trial);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL, "write %s", path);
        if (!f) return;
        for (int i = 0; i < 1500; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            const uint64_t r = st >> 33;
            if (i > 5 && r % 10 < 3)
                keys[i] = keys[i - 1 - (int)(r / 10 % 5)]; /* a burst: a recent key again */
            else                                           /* Zipf-like: key k with weight ~1/(k+1) */
                keys[i] = (int32_t)((double)E * (double)(r % 1000) * (double)(r % 1000) / 1e6);
            fprintf(f, "%d\n", keys[i]);
        }
        fclose(f);
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/cache_ref.py %s %d", src, path, c);
        FILE *p = popen(cmd, "r");
        long long want_lru = -1, want_arc = -1, want_min = -1;
        CHECK(p && fscanf(p, "%lld %lld %lld", &want_lru, &want_arc, &want_min) == 3, "run %s", cmd);
        if (p) pclose(p);
        const int64_t got_lru =
            grok_cache_simulate(keys, NULL, 1500, 1, E, 1, c, GROK_CACHE_LRU, false, false).hits;
        const int64_t got_arc =
            grok_cache_simulate(keys, NULL, 1500, 1, E, 1, c, GROK_CACHE_ARC, false, false).hits;
        const int64_t got_min =
            grok_cache_simulate(keys, NULL, 1500, 1, E, 1, c, GROK_CACHE_LRU, false, true).hits;
        CHECK(got_lru == want_lru && got_arc == want_arc && got_min == want_min,
              "trace %d (%d keys, %d slots): hits lru %lld/%lld arc %lld/%lld min %lld/%lld (ours/reference)",
              trial, E, c, (long long)got_lru, want_lru, (long long)got_arc, want_arc, (long long)got_min,
              want_min);
    }
}

static void check_parsing(void) {
    CHECK(grok_parse_size("1024") == 1024, "plain bytes");
    CHECK(grok_parse_size("1.5G") == (int64_t)1610612736, "1.5G");
    CHECK(grok_parse_size("512MiB") == (int64_t)512 << 20, "512MiB");
    CHECK(grok_parse_size("2t") == (int64_t)2 << 40, "2t");
    CHECK(grok_parse_size("12X") == -1 && grok_parse_size("") == -1 && grok_parse_size("-1G") == -1 &&
              grok_parse_size("G") == -1,
          "malformed sizes are refused");
    CHECK(grok_cache_policy_from_name("ARC") == GROK_CACHE_ARC && grok_cache_policy_from_name("fifo") == -1,
          "policy names");
}

/* The plan follows the limit: all packed when it fits, the cache when the
 * dense part and some slots fit, the mapped file below that. */
static void check_plan_choice(const char *path) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    CHECK(m, "load: %s", err);
    if (!m) return;
    grok_seq_params sp = grok_seq_default_params();
    grok_runner_params rp = grok_runner_default_params();
    sp.n_ctx = 64, rp.n_threads = 2;
    grok_memory_params mp = grok_memory_default_params();
    grok_memory_plan p;
    mp.limit = -1;
    grok_model_set_memory(m, &mp, err, sizeof err);
    CHECK(grok_model_plan_memory(m, &sp, &rp, &p, err, sizeof err) == 0 && p.kind == GROK_PLAN_PACKED,
          "no limit: packed");
    const int64_t all = p.weight_bytes + p.reserve_bytes;
    mp.limit = all * 2;
    grok_model_set_memory(m, &mp, err, sizeof err);
    grok_model_plan_memory(m, &sp, &rp, &p, err, sizeof err);
    CHECK(p.kind == GROK_PLAN_PACKED, "twice the model: packed, got %s", grok_plan_name(p.kind));
    mp.limit = p.dense_bytes + p.reserve_bytes + (p.weight_bytes - p.dense_bytes) / 2;
    grok_model_set_memory(m, &mp, err, sizeof err);
    grok_model_plan_memory(m, &sp, &rp, &p, err, sizeof err);
    CHECK(p.kind == GROK_PLAN_CACHE && p.cache_slots > 2 && p.cache_slots < p.n_expert_keys &&
              p.resident_bytes <= mp.limit,
          "half the experts: cache, got %s with %lld of %lld slots, resident %lld of %lld",
          grok_plan_name(p.kind), (long long)p.cache_slots, (long long)p.n_expert_keys,
          (long long)p.resident_bytes, (long long)mp.limit);
    mp.limit = p.dense_bytes / 2 + 1;
    grok_model_set_memory(m, &mp, err, sizeof err);
    grok_model_plan_memory(m, &sp, &rp, &p, err, sizeof err);
    CHECK(p.kind == GROK_PLAN_MMAP, "below the dense weights: mmap, got %s", grok_plan_name(p.kind));
    char line[768];
    grok_memory_plan_describe(&p, line, sizeof line);
    CHECK(strstr(line, "mmap") != NULL, "describe names the plan: %s", line);
    grok_model_free(m);
}

/* The routing trace replayed with every slot: only first uses miss. */
static void check_trace(const char *path) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    if (!m) return;
    grok_model_trace_routing(m, true);
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 64, cp.n_threads = 2, cp.n_batch = 5; /* batches in chunks: the trace keeps token order */
    grok_context *c = grok_context_create(m, &cp, err, sizeof err);
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = 5 + i * 11;
    CHECK(c && grok_decode(c, ids, 20, NULL, err, sizeof err) == 0, "decode: %s", err);
    const int32_t *ch, *pr;
    const int64_t n = grok_model_routing(m, &ch, &pr);
    const grok_hparams *hp = grok_model_hparams(m);
    CHECK(n == 20, "20 tokens traced, got %lld", (long long)n);
    bool ok = true;
    int64_t distinct = 0;
    uint8_t *seen = calloc((size_t)(hp->n_layers * hp->n_experts), 1);
    for (int64_t i = 0; i < n * hp->n_layers * hp->n_experts_used; i++) {
        const int64_t l = i / hp->n_experts_used % hp->n_layers;
        ok &= ch[i] >= 0 && ch[i] < hp->n_experts;
        ok &= l == 0 ? pr[i] == -1 : pr[i] >= 0 && pr[i] < hp->n_experts;
        if (ch[i] >= 0 && !seen[l * hp->n_experts + ch[i]]++) distinct++;
    }
    CHECK(ok, "trace entries in range, layer 0 unpredicted");
    grok_cache_sim_result r = grok_cache_simulate(ch, pr, n, hp->n_layers, hp->n_experts, hp->n_experts_used,
                                                  hp->n_layers * hp->n_experts, GROK_CACHE_LRU, false, false);
    CHECK(r.reads == distinct && r.hits == r.lookups - distinct, "all slots: %lld reads, %lld distinct keys",
          (long long)r.reads, (long long)distinct);
    free(seen);
    grok_context_free(c);
    grok_model_free(m);
}

int main(void) {
    grok_kernels_set_mode(GROK_KERNELS_FAST);
    mkdir(getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp", 0755);
    check_parsing();
    check_simulator();
    check_policies_against_reference();
    const char *src = getenv("GROK_SRC") ? getenv("GROK_SRC") : ".";
    char mini[4096];
    snprintf(mini, sizeof mini, "%s/models/grok-mini.gguf", src);
    check_cache_bits(mini, "grok-mini q8_0");
    check_plan_choice(mini);
    check_trace(mini);

    /* the packed file: mapped by the packed plan, read by the cache, the
     * same bits; refused once the model file changes */
    const char *tmp0 = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp0, 0755);
    char copy[4096], pf[4200], cmd[9000], e2[GROK_ERR_SIZE];
    snprintf(copy, sizeof copy, "%s/mini.gguf", tmp0);
    snprintf(pf, sizeof pf, "%s.grokpack", copy);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mini, copy);
    CHECK(system(cmd) == 0, "copy the bundled model");
    grok_model *mm = grok_model_load(copy, e2, sizeof e2);
    CHECK(mm && grok_model_write_packfile(mm, NULL, NULL, e2, sizeof e2) == 0, "write the packed file: %s",
          e2);
    grok_model_free(mm);
    g_pack_file = pf;
    check_cache_bits(copy, "grok-mini q8_0, packed file");
    g_pack_file = "";
    snprintf(cmd, sizeof cmd, "touch -d '2001-01-01' '%s'", copy); /* same bytes, another mtime */
    CHECK(system(cmd) == 0, "touch");
    mm = grok_model_load(copy, e2, sizeof e2);
    grok_memory_params mp = grok_memory_default_params();
    mp.plan = GROK_PLAN_PACKED;
    mp.pack_file = pf;
    grok_model_set_memory(mm, &mp, e2, sizeof e2);
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 16, cp.n_threads = 1;
    grok_context *cc = grok_context_create(mm, &cp, e2, sizeof e2);
    CHECK(cc && grok_model_memory_plan(mm)->pack_file[0] == 0, "a packed file of another mtime is not used");
    grok_context_free(cc);
    grok_model_free(mm);

    /* the model file shrinks under a running model: the cache's read
     * fails and the step says so (GROK_ERR_IO), no crash */
    {
        char cut[4096];
        snprintf(cut, sizeof cut, "%s/cut.gguf", tmp0);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mini, cut);
        CHECK(system(cmd) == 0, "copy the bundled model");
        grok_model *mc = grok_model_load(cut, e2, sizeof e2);
        grok_memory_params mq = grok_memory_default_params();
        mq.plan = GROK_PLAN_CACHE, mq.cache_slots = 1, mq.pack_file = "";
        CHECK(mc && grok_model_set_memory(mc, &mq, e2, sizeof e2) == 0, "load: %s", e2);
        grok_context_params cq = grok_context_default_params();
        cq.n_ctx = 64, cq.n_threads = 1;
        grok_context *cx = mc ? grok_context_create(mc, &cq, e2, sizeof e2) : NULL;
        CHECK(cx != NULL, "context: %s", e2);
        /* the last layer's down experts lose their second half (the norm
         * after them was copied at load) */
        const grok_gguf_tensor *t =
            cx ? grok_gguf_find_tensor(grok_model_gguf(mc), "blk.3.ffn_down_exps.weight") : NULL;
        CHECK(t != NULL, "find the last expert tensor");
        uint64_t at = 0;
        if (cx && t && grok_gguf_locate(grok_model_gguf(mc), t->data, NULL, NULL, &at) == 0 &&
            truncate(cut, (off_t)(at + t->nbytes / 2)) == 0) {
            int32_t ids[32];
            for (int i = 0; i < 32; i++) ids[i] = 5 + i * 13;
            int rc = grok_decode(cx, ids, 32, NULL, e2, sizeof e2);
            CHECK(rc == GROK_ERR_IO && strstr(e2, "expert cache") && strstr(e2, "cut.gguf"),
                  "a truncated file: rc %d (want %d), '%s'", rc, GROK_ERR_IO, e2);
            rc = grok_decode(cx, ids, 1, NULL, e2, sizeof e2);
            CHECK(rc == GROK_ERR_IO, "and the next step too: rc %d", rc);
        }
        grok_context_free(cx);
        grok_model_free(mc);
    }

    /* f16 experts have no packed layout: the slots hold the file's rows */
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[4096], err[GROK_ERR_SIZE];
    snprintf(path, sizeof path, "%s/xcache_f16.gguf", tmp);
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 3, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 16;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 96, hp.n_ctx_train = 64;
    grok_tokenizer *tok = grok_tokenizer_placeholder(300, err, sizeof err);
    CHECK(tok && grok_model_write_random(path, &hp, GROK_TYPE_F16, tok, true, 3, err, sizeof err) == 0,
          "write f16 model: %s", err);
    grok_tokenizer_free(tok);
    check_cache_bits(path, "random f16");
    grok_kernels_set_mode(GROK_KERNELS_EXACT); /* file-layout slots serve every kernel mode */
    check_cache_bits(path, "random f16, exact kernels");
    return check_summary("test_xcache");
}
