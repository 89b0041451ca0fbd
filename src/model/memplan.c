/*
 * memplan.c - how a model's weights live in memory, chosen by the memory
 * this process may use. The limit comes from the tightest memory cgroup
 * (v1 memory.limit_in_bytes or v2 memory.max, at every level from this
 * process's group up to the hierarchy's root, less what each level
 * already holds outside the page cache), from MemAvailable, or from the
 * caller. There is no swap to count on, so anonymous memory (packed
 * copies, cache slots, KV caches) is what must fit; page-cache pages
 * (the mapped file) are charged to the cgroup too but the kernel takes
 * them back under pressure, which costs speed, never the process.
 *
 * Three plans, tried in order (grok.h): everything packed; the dense
 * weights packed and the experts through a cache of as many slots as
 * fit; the mapped file alone. The plan is made once, at the first
 * context (whose KV cache and scratch are then known), and logged.
 */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf/gguf_internal.h"
#include "model/model.h"

/* ---- logging ---- */

static void (*g_log)(void *ud, const char *line);
static void *g_log_ud;

void grok_set_log(void (*fn)(void *ud, const char *line), void *ud) {
    g_log = fn;
    g_log_ud = ud;
}

void grok_log(const char *fmt, ...) {
    if (!g_log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    g_log(g_log_ud, line);
}

/* ---- names and sizes ---- */

const char *grok_plan_name(grok_plan_kind k) {
    switch (k) {
    case GROK_PLAN_PACKED: return "packed";
    case GROK_PLAN_CACHE: return "expert-cache";
    case GROK_PLAN_MMAP: return "mmap";
    default: return "auto";
    }
}

const char *grok_cache_policy_name(grok_cache_policy p) {
    return p == GROK_CACHE_LFU ? "lfu" : p == GROK_CACHE_ARC ? "arc" : "lru";
}

int grok_cache_policy_from_name(const char *name) {
    if (strcasecmp(name, "lru") == 0) return GROK_CACHE_LRU;
    if (strcasecmp(name, "lfu") == 0) return GROK_CACHE_LFU;
    if (strcasecmp(name, "arc") == 0) return GROK_CACHE_ARC;
    return -1;
}

int64_t grok_parse_size(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || !isfinite(v) || isalpha((unsigned char)s[0])) return -1;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0, end++; break;
    case 'M': mul = 1048576.0, end++; break;
    case 'G': mul = 1073741824.0, end++; break;
    case 'T': mul = 1099511627776.0, end++; break;
    default: break;
    }
    if (mul > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    v *= mul;
    if (v >= 9.2e18) return -1;
    return (int64_t)v;
}

/* ---- finding the limit ---- */

static int64_t read_i64_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[64] = "";
    int64_t v = -1;
    if (fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "max", 3) == 0)
            v = INT64_MAX;
        else {
            char *end;
            long long x = strtoll(buf, &end, 10);
            if (end != buf) v = x;
        }
    }
    fclose(f);
    return v;
}

/* Sum of the named fields of a memory.stat file; -1 when none was found. */
static int64_t stat_fields(const char *path, const char *const *names, int n) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char key[128];
    long long v;
    int64_t sum = 0;
    bool any = false;
    while (fscanf(f, "%127s %lld", key, &v) == 2)
        for (int i = 0; i < n; i++)
            if (strcmp(key, names[i]) == 0) sum += v, any = true;
    fclose(f);
    return any ? sum : -1;
}

/* Mount point of the cgroup hierarchy (v2: fstype cgroup2; v1: fstype
 * cgroup with option "memory") and the cgroup path its root stands for. */
static bool find_mount(bool v2, char *mnt, size_t mnt_size, char *root, size_t root_size) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent major:minor root mountpoint options [optional...] - fstype source superoptions */
        char r[1024], mp[1024];
        if (sscanf(line, "%*s %*s %*s %1023s %1023s", r, mp) != 2) continue;
        const char *dash = strstr(line, " - ");
        if (!dash) continue;
        char fstype[64], src[256], opts[1024] = "";
        if (sscanf(dash + 3, "%63s %255s %1023s", fstype, src, opts) < 2) continue;
        if (v2 ? strcmp(fstype, "cgroup2") != 0 : strcmp(fstype, "cgroup") != 0) continue;
        if (!v2) {
            bool mem = false;
            for (char *tok = strtok(opts, ","); tok; tok = strtok(NULL, ","))
                mem |= strcmp(tok, "memory") == 0;
            if (!mem) continue;
        }
        snprintf(mnt, mnt_size, "%s", mp);
        snprintf(root, root_size, "%s", r);
        found = true;
    }
    fclose(f);
    return found;
}

/* This process's cgroup path in the v2 hierarchy ("0::/x") or the v1
 * memory hierarchy ("4:memory:/x"). */
static bool own_cgroup(bool v2, char *path, size_t size) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1;
        if (v2) {
            found = strncmp(line, "0", 1) == 0 && c1 == line + 1 && *ctrl == 0;
        } else {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", ctrl);
            for (char *tok = strtok(tmp, ","); tok && !found; tok = strtok(NULL, ","))
                found = strcmp(tok, "memory") == 0;
        }
        if (found) snprintf(path, size, "%s", c2 + 1);
    }
    fclose(f);
    return found;
}

/* The room left under the tightest limit from dir up to the mount point:
 * min over levels of (limit - usage not in the page cache). */
static int64_t cgroup_room(bool v2, const char *mnt, const char *dir, char *source, size_t source_size) {
    char d[4096];
    snprintf(d, sizeof d, "%s", dir);
    int64_t best = -1;
    const size_t mlen = strlen(mnt);
    for (;;) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", d, v2 ? "memory.max" : "memory.limit_in_bytes");
        int64_t lim = read_i64_file(p);
        /* v1 writes "no limit" as a huge page-rounded number */
        if (lim > 0 && lim < ((int64_t)1 << 60)) {
            snprintf(p, sizeof p, "%s/%s", d, v2 ? "memory.current" : "memory.usage_in_bytes");
            int64_t used = read_i64_file(p);
            static const char *const v1_file[] = {"total_cache"}, *const v2_file[] = {"file"};
            snprintf(p, sizeof p, "%s/memory.stat", d);
            int64_t file = stat_fields(p, v2 ? v2_file : v1_file, 1);
            if (used < 0) used = 0;
            if (file < 0 || file > used) file = 0;
            int64_t room = lim - (used - file);
            if (room < 0) room = 0;
            if (best < 0 || room < best) {
                best = room;
                snprintf(source, source_size,
                         "cgroup %s %.100s (limit %.1f MiB, %.1f MiB in use outside the page cache)",
                         v2 ? "v2" : "v1", d, (double)lim / 1048576.0, (double)(used - file) / 1048576.0);
            }
        }
        if (strlen(d) <= mlen) break;
        char *slash = strrchr(d, '/');
        if (!slash || slash < d + mlen) break;
        *slash = 0;
    }
    return best;
}

static int64_t cgroup_limit(bool v2, char *source, size_t source_size) {
    char mnt[1024], root[1024], path[2048];
    if (!find_mount(v2, mnt, sizeof mnt, root, sizeof root) || !own_cgroup(v2, path, sizeof path)) return -1;
    /* the mount shows the hierarchy from `root` on (a cgroup namespace or
     * a bind mount); a path outside it cannot be reached: use the mount's top */
    const char *rel = path;
    const size_t rl = strlen(root);
    if (strcmp(root, "/") != 0) rel = strncmp(path, root, rl) == 0 ? path + rl : "";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s", mnt, rel);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
    FILE *probe = NULL;
    char test[4200];
    snprintf(test, sizeof test, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (!(probe = fopen(test, "r"))) snprintf(dir, sizeof dir, "%s", mnt); /* not visible: the top */
    if (probe) fclose(probe);
    return cgroup_room(v2, mnt, dir, source, source_size);
}

static int64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char key[64];
    long long kb;
    int64_t v = -1;
    while (fscanf(f, "%63s %lld kB", key, &kb) == 2)
        if (strcmp(key, "MemAvailable:") == 0) v = (int64_t)kb * 1024;
    fclose(f);
    return v;
}

int64_t grok_memory_available(char *source, size_t source_size) {
    char s1[192] = "", s2[192] = "";
    int64_t a = cgroup_limit(true, s1, sizeof s1), b = cgroup_limit(false, s2, sizeof s2), best = -1;
    const char *src = "none";
    if (a >= 0) best = a, src = s1;
    if (b >= 0 && (best < 0 || b < best)) best = b, src = s2;
    /* the machine's own memory still bounds a generous cgroup */
    int64_t av = mem_available();
    if (av >= 0 && (best < 0 || av < best)) best = av, src = "MemAvailable (/proc/meminfo)";
    if (source) snprintf(source, source_size, "%s", src);
    return best;
}

/* ---- sizes ---- */

static int64_t mat_share_bytes(const grok_mat *w, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    return (r1 - r0) * grok_type_row_size(w->type, c1 - c0);
}

/* Bytes a sequence of n_ctx positions holds (KV cache, tokens, logits)
 * for share sh, as forward.c allocates them. */
int64_t grok_seq_bytes(const grok_model *m, const grok_dist *sh, int64_t n_ctx, grok_type kv_type) {
    const grok_hparams *hp = &m->hp;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train;
    const int64_t nkvh = sh->kvh1 - sh->kvh0, kvd = nkvh > 0 ? nkvh * hp->head_dim : 1;
    const int64_t elt = kv_type == GROK_TYPE_F16 ? 2 : 4;
    return 2 * (sh->l1 - sh->l0) * n_ctx * kvd * elt + n_ctx * 4 + hp->n_vocab * 4;
}

/* Bytes a runner of n_batch tokens a step on nt threads holds (scratch,
 * the attention rows for n_ctx positions, the quantized activations). */
static int64_t runner_bytes(const grok_model *m, const grok_dist *sh, int64_t B, int64_t n_ctx, int nt) {
    const grok_hparams *hp = &m->hp;
    if (B <= 0) B = 256;
    const int64_t G = hp->n_heads / hp->n_kv_heads, nkvh = sh->kvh1 - sh->kvh0;
    const int64_t kvd = nkvh > 0 ? nkvh * hp->head_dim : 1, qd = kvd * (nkvh > 0 ? G : 1);
    const int64_t nff = sh->f1 > sh->f0 ? sh->f1 - sh->f0 : 1, d = hp->d_model;
    int64_t scratch = 4 * (B * (5 * d + 2 * qd + 2 * kvd + 2 * nff + hp->head_dim + 3 * hp->n_experts) +
                           (int64_t)nt * G * n_ctx + hp->n_vocab);
    return scratch + B * (nff > d ? nff : d) / 32 * 40;
}

/* This share's bytes: dense (everything but the experts) and one
 * (layer, expert) slot. */
static void share_sizes(const grok_model *m, const grok_dist *sh, int64_t *dense, int64_t *slot) {
    const grok_hparams *hp = &m->hp;
    const int64_t D = hp->head_dim, G = hp->n_heads / hp->n_kv_heads, d = hp->d_model;
    int64_t dn = 0;
    for (int64_t il = sh->l0; il < sh->l1; il++) {
        const grok_layer *L = &m->layers[il];
        dn += mat_share_bytes(&L->wq, sh->kvh0 * G * D, sh->kvh1 * G * D, 0, d);
        dn += 2 * mat_share_bytes(&L->wk, sh->kvh0 * D, sh->kvh1 * D, 0, d);
        dn += mat_share_bytes(&L->wo, 0, d, sh->kvh0 * G * D, sh->kvh1 * G * D);
        dn += mat_share_bytes(&L->router, 0, hp->n_experts, 0, d) + 4 * 4 * d;
    }
    if (!sh->pipeline || sh->rank == 0) {
        dn += mat_share_bytes(&m->output, sh->v0, sh->v1, 0, d) + 4 * d;
        /* the looked-up rows of an untied embedding stay in the file's pages */
    }
    *dense = dn;
    const grok_layer *L = &m->layers[sh->l0 < sh->l1 ? sh->l0 : 0];
    *slot =
        2 * mat_share_bytes(&L->gate, sh->f0, sh->f1, 0, d) + mat_share_bytes(&L->down, 0, d, sh->f0, sh->f1);
}

static bool g_default_set;
static grok_memory_params g_default;

void grok_memory_set_default(const grok_memory_params *p) {
    g_default_set = p != NULL;
    if (p) g_default = *p;
}

grok_memory_params grok_memory_default_params(void) {
    if (g_default_set) return g_default;
    grok_memory_params p = {.limit = 0,
                            .plan = GROK_PLAN_AUTO,
                            .cache_slots = 0,
                            .policy = GROK_CACHE_LFU,
                            .prefetch = 1,
                            .io_threads = 2,
                            .buffered_io = false,
                            .n_contexts = 1};
    return p;
}

int grok_memory_params_check(const grok_memory_params *p, char *err, size_t err_size) {
    if (p->cache_slots < 0 || p->io_threads < 0 || p->io_threads > 64 || p->n_contexts < 0 ||
        (int)p->policy < 0 || p->policy > GROK_CACHE_ARC || (int)p->plan < 0 || p->plan > GROK_PLAN_MMAP) {
        snprintf(err, err_size, "memory parameters out of range (slots %" PRId64 ", I/O threads %d)",
                 p->cache_slots, p->io_threads);
        return -1;
    }
    if (p->prefetch < 0 || p->prefetch > 2) {
        snprintf(err, err_size, "memory parameters: prefetch %d is not 0, 1 or 2", p->prefetch);
        return -1;
    }
    return 0;
}

int grok_model_set_memory(grok_model *m, const grok_memory_params *p, char *err, size_t err_size) {
    if (m->planned) {
        snprintf(err, err_size, "the memory plan is made at the first runner: set it before");
        return -1;
    }
    if (grok_memory_params_check(p, err, err_size)) return -1;
    m->params.memory = *p;
    return 0;
}

/* Headroom for what the plan does not count: the program, its libraries
 * and stacks, the file's pages it reads (norms, embedding rows, routers),
 * allocator slack. Measured: grok bench on a 1 MB model peaks at ~6 MiB
 * of RSS; 3 % of a large limit leaves the kernel room for the page cache. */
static int64_t headroom(int64_t limit) { return (int64_t)6 * 1048576 + limit / 32; }

/* Every fault on the map reads the device's read-ahead window around its
 * page (8 MiB on some disks), for each thread at once. When the limit
 * leaves the page cache less than a few such windows per thread, the kernel
 * cannot reclaim as fast as the faults charge and kills the process
 * (measured with 8 MiB windows and 2 threads: 1 in 2 runs killed in an
 * 8 MiB cgroup, 1 in 8 at 16 MiB): there, faults read their page only. */
static void mmap_read_ahead(const grok_model *m, grok_memory_plan *p, int n_threads) {
    const int64_t ra = grok_gguf_read_ahead_bytes(m->file);
    const bool tight = p->limit > 0 && p->weight_bytes + p->reserve_bytes > p->limit &&
                       p->limit - p->reserve_bytes < 4 * (int64_t)n_threads * ra;
    p->read_ahead_bytes = tight ? 0 : ra;
}

int grok_plan_for(const grok_model *m, const grok_dist *sh, const grok_seq_params *sp, int64_t n_batch,
                  int n_threads, grok_memory_plan *out, char *err, size_t err_size) {
    const grok_memory_params *mp = &m->params.memory;
    grok_memory_plan p = {.kind = GROK_PLAN_PACKED, .policy = mp->policy, .prefetch = mp->prefetch};
    if (mp->limit > 0) {
        p.limit = mp->limit;
        snprintf(p.limit_source, sizeof p.limit_source, "given");
    } else if (mp->limit == 0) {
        p.limit = grok_memory_available(p.limit_source, sizeof p.limit_source);
        /* MPI ranks on one machine share its memory (and its cgroup): each
         * plans for its part (Open MPI's and MPICH's local rank counts) */
        const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        if (!ls) ls = getenv("MPI_LOCALNRANKS");
        const long local = ls ? strtol(ls, NULL, 10) : 1;
        if (p.limit > 0 && local > 1) {
            p.limit /= local;
            const size_t n = strlen(p.limit_source);
            snprintf(p.limit_source + n, sizeof p.limit_source - n, ", shared by %ld ranks here", local);
        }
    } else {
        p.limit = -1;
        snprintf(p.limit_source, sizeof p.limit_source, "none (not limited)");
    }
    int64_t dense, slot;
    share_sizes(m, sh, &dense, &slot);
    const int64_t keys = (sh->l1 - sh->l0) * (sh->f1 > sh->f0 ? sh->e1 - sh->e0 : 0);
    p.dense_bytes = dense;
    p.expert_bytes = slot;
    p.n_expert_keys = keys;
    p.weight_bytes = dense + keys * slot;
    const int io = mp->io_threads > 0 ? mp->io_threads : 2;
    /* the sequences: those made already (their KV caches are allocated but
     * not yet touched, so the cgroup does not count them), and as many
     * more as n_contexts asks for, like sp or of the model's context */
    const int64_t n_ctx = sp && sp->n_ctx > 0 ? sp->n_ctx : m->hp.n_ctx_train;
    const int64_t one = grok_seq_bytes(m, sh, n_ctx, sp ? sp->kv_type : GROK_TYPE_F32);
    int64_t seqs = m->seq_bytes;
    if (mp->n_contexts > m->n_seqs) seqs += (mp->n_contexts - m->n_seqs) * one;
    if (m->n_seqs == 0 && mp->n_contexts <= 0) seqs += one;
    const int64_t ctxb = seqs + runner_bytes(m, sh, n_batch, n_ctx, n_threads);
    p.reserve_bytes_seqs = seqs;
    const int64_t io_buf = (int64_t)io * grok_xcache_stage_bytes(m, sh);
    const int64_t head = headroom(p.limit > 0 ? p.limit : 0);
    const char *env = getenv("GROK_PACK");
    const bool no_pack = !m->params.pack || (env && strcmp(env, "0") == 0);
    grok_plan_kind kind = mp->plan;
    if (no_pack && kind != GROK_PLAN_CACHE) kind = GROK_PLAN_MMAP;
    if (kind == GROK_PLAN_AUTO) {
        if (p.limit < 0 || p.weight_bytes + ctxb + head <= p.limit)
            kind = GROK_PLAN_PACKED;
        else if (keys > 0 && dense + ctxb + head + io_buf + 2 * slot <= p.limit)
            kind = GROK_PLAN_CACHE;
        else
            kind = GROK_PLAN_MMAP;
    }
    p.kind = kind;
    p.reserve_bytes = ctxb + head + (kind == GROK_PLAN_CACHE ? io_buf : 0);
    if (kind == GROK_PLAN_CACHE) {
        if (keys == 0) {
            snprintf(err, err_size, "the expert cache was asked for, but this share computes no experts");
            return -1;
        }
        int64_t n = mp->cache_slots;
        if (n == 0) n = p.limit > 0 ? (p.limit - dense - p.reserve_bytes) / (slot > 0 ? slot : 1) : keys;
        if (n < 1) n = 1;
        if (n > keys) n = keys;
        p.cache_slots = n;
        p.direct_io = !mp->buffered_io;
        p.resident_bytes = dense + n * slot + p.reserve_bytes;
    } else if (kind == GROK_PLAN_PACKED) {
        p.cache_slots = keys;
        p.resident_bytes = p.weight_bytes + p.reserve_bytes;
    } else {
        p.resident_bytes = p.reserve_bytes;
        mmap_read_ahead(m, &p, n_threads);
    }
    *out = p;
    return 0;
}

int grok_model_plan_memory(const grok_model *m, const grok_seq_params *sp, const grok_runner_params *rp,
                           grok_memory_plan *out, char *err, size_t err_size) {
    const grok_dist sh = grok_model_share(m);
    int nt = rp && rp->pool ? grok_threadpool_size(rp->pool) : rp && rp->n_threads > 0 ? rp->n_threads : 0;
    if (nt <= 0) nt = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return grok_plan_for(m, &sh, sp, rp ? rp->n_batch : 0, nt > 0 ? nt : 1, out, err, err_size);
}

const grok_memory_plan *grok_model_memory_plan(const grok_model *m) { return m->planned ? &m->plan : NULL; }

static void mib(char *buf, size_t size, int64_t b) {
    if (b >= ((int64_t)10 << 30))
        snprintf(buf, size, "%.1f GiB", (double)b / 1073741824.0);
    else
        snprintf(buf, size, "%.1f MiB", (double)b / 1048576.0);
}

void grok_memory_plan_describe(const grok_memory_plan *p, char *buf, size_t size) {
    char lim[32], w[32], dn[32], sl[32], rs[32], res[32];
    mib(lim, sizeof lim, p->limit);
    mib(w, sizeof w, p->weight_bytes);
    mib(dn, sizeof dn, p->dense_bytes);
    mib(sl, sizeof sl, p->expert_bytes);
    mib(rs, sizeof rs, p->reserve_bytes);
    mib(res, sizeof res, p->resident_bytes);
    int n = snprintf(buf, size, "memory plan: %s; limit %s (%s); weights %s", grok_plan_name(p->kind),
                     p->limit >= 0 ? lim : "none", p->limit_source, w);
    if (n < 0 || (size_t)n >= size) return;
    if (p->kind == GROK_PLAN_CACHE)
        snprintf(buf + n, size - (size_t)n,
                 "; dense %s resident, experts in %" PRId64 " of %" PRId64
                 " slots of %s (%.0f %%), %s eviction, %s, %s reads%s; reserve %s; resident %s",
                 dn, p->cache_slots, p->n_expert_keys, sl,
                 100.0 * (double)p->cache_slots / (double)(p->n_expert_keys ? p->n_expert_keys : 1),
                 grok_cache_policy_name(p->policy), p->prefetch ? "router prefetch" : "no prefetch",
                 p->direct_io ? "O_DIRECT" : "buffered", p->pack_file[0] ? " of the packed file" : "", rs,
                 res);
    else if (p->kind == GROK_PLAN_PACKED)
        snprintf(buf + n, size - (size_t)n, " packed%s; reserve %s; resident %s",
                 p->pack_file[0] ? ", mapped from the packed file" : " in memory", rs, res);
    else
        snprintf(buf + n, size - (size_t)n, " read from the mapped file (page cache%s); reserve %s",
                 p->limit >= 0 && p->read_ahead_bytes == 0
                     ? ", faults read single pages: the limit leaves no room for read-ahead"
                     : "",
                 rs);
}

static pthread_mutex_t g_prepare_lock = PTHREAD_MUTEX_INITIALIZER;

void grok_model_prepare(grok_model *m, const grok_dist *sh, grok_threadpool *pool, int64_t n_batch) {
    pthread_mutex_lock(&g_prepare_lock);
    if (!m->planned) {
        char err[GROK_ERR_SIZE] = "";
        /* the packed file, when there: checked against the model file first */
        const char *pfp = m->params.memory.pack_file;
        char def[4096];
        if (!pfp) {
            grok_packfile_default_path(m, def, sizeof def);
            pfp = def;
        }
        const char *env = getenv("GROK_PACK");
        if (*pfp && !(env && strcmp(env, "0") == 0)) {
            bool absent;
            m->pf = grok_packfile_open(m, pfp, &absent, err, sizeof err);
            if (!m->pf && (!absent || m->params.memory.pack_file)) grok_log("packed file not used: %s", err);
        }
        grok_memory_plan p;
        const int nt = pool ? grok_threadpool_size(pool) : 1;
        if (grok_plan_for(m, sh, m->last_seq.n_ctx ? &m->last_seq : NULL, n_batch, nt, &p, err, sizeof err)) {
            grok_log("%s; the mapped file is used", err);
            grok_plan_for(m, sh, NULL, n_batch, nt, &p, err, sizeof err);
            p.kind = GROK_PLAN_MMAP, p.cache_slots = 0, p.resident_bytes = p.reserve_bytes;
            mmap_read_ahead(m, &p, nt);
        }
        if (p.kind == GROK_PLAN_CACHE && !(m->xc = grok_xcache_create(m, sh, &p, err, sizeof err))) {
            grok_log("expert cache: %s; the mapped file is used", err);
            p.kind = GROK_PLAN_MMAP, p.cache_slots = 0, p.resident_bytes = p.reserve_bytes;
            mmap_read_ahead(m, &p, nt);
        }
        if (p.kind == GROK_PLAN_CACHE) {
            /* Through the map, pages come one at a time: a fault's read-
             * around (the device's read-ahead window, MiBs) would pull in
             * the experts beside each small tensor. What the packing reads
             * is asked for whole, ahead. */
            grok_gguf_advise(m->file, NULL, 0, MADV_RANDOM);
            for (int64_t il = sh->l0; il < sh->l1; il++) {
                const grok_layer *L = &m->layers[il];
                const grok_mat *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->router};
                for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
                    grok_gguf_advise(m->file, w[i]->data, w[i]->row_bytes * (size_t)w[i]->rows,
                                     MADV_WILLNEED);
            }
            grok_gguf_advise(m->file, m->output.data, m->output.row_bytes * (size_t)m->output.rows,
                             MADV_WILLNEED);
        }
        if (p.kind == GROK_PLAN_MMAP)
            grok_gguf_advise(m->file, NULL, 0, p.read_ahead_bytes ? MADV_NORMAL : MADV_RANDOM);
        if (m->pf && (p.kind == GROK_PLAN_PACKED || p.kind == GROK_PLAN_CACHE)) {
            m->packed_bytes += grok_model_use_packfile(m, sh, p.kind == GROK_PLAN_PACKED);
            snprintf(p.pack_file, sizeof p.pack_file, "%.255s", pfp);
        }
        if (p.kind == GROK_PLAN_PACKED || p.kind == GROK_PLAN_CACHE)
            grok_model_pack(m, sh, pool, p.kind == GROK_PLAN_PACKED); /* what the packed file lacks */
        /* the packed copies are made: the file's pages read for them would
         * only be a second copy charged to this cgroup */
        if (p.kind == GROK_PLAN_CACHE) grok_gguf_drop_cache(m->file);
        m->plan = p;
        m->planned = true;
        char line[768];
        grok_memory_plan_describe(&p, line, sizeof line);
        grok_log("%s", line);
    }
    pthread_mutex_unlock(&g_prepare_lock);
}

void grok_model_seq_account(grok_model *m, const grok_seq_params *sp, int delta) {
    pthread_mutex_lock(&g_prepare_lock);
    const grok_dist sh = grok_model_share(m);
    const int64_t b = grok_seq_bytes(m, &sh, sp->n_ctx, sp->kv_type);
    m->seq_bytes += delta * b;
    m->n_seqs += delta;
    if (delta > 0) m->last_seq = *sp;
    grok_memory_plan *p = &m->plan;
    if (delta > 0 && m->planned && p->limit > 0) {
        /* the plan counted its reserve's sequences; one beyond them must
         * come out of the expert cache, or the limit is passed */
        const int64_t need = m->seq_bytes - p->reserve_bytes_seqs;
        if (need > 0 && p->kind == GROK_PLAN_CACHE && m->xc) {
            int64_t drop = (need + p->expert_bytes - 1) / p->expert_bytes, n = p->cache_slots - drop;
            if (n < 1) n = 1;
            if (n < p->cache_slots) {
                grok_xcache_shrink(m->xc, n);
                grok_log("a sequence of %" PRId64 " positions (%.1f MiB) beyond the plan's: the expert cache "
                         "gives up %" PRId64 " of its %" PRId64 " slots",
                         sp->n_ctx, (double)b / 1048576.0, p->cache_slots - n, p->cache_slots);
                p->reserve_bytes_seqs += (p->cache_slots - n) * p->expert_bytes;
                p->cache_slots = n;
                p->resident_bytes = p->dense_bytes + n * p->expert_bytes + p->reserve_bytes;
            }
        }
        if (p->kind == GROK_PLAN_CACHE && m->seq_bytes > p->reserve_bytes_seqs)
            grok_log("the sequences' KV caches (%.1f MiB) exceed what the memory plan left them (%.1f MiB)",
                     (double)m->seq_bytes / 1048576.0, (double)p->reserve_bytes_seqs / 1048576.0);
    }
    pthread_mutex_unlock(&g_prepare_lock);
}
