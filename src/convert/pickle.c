/*
 * pickle.c - an allowlist pickle interpreter for the official Grok-1
 * checkpoint files (see pickle.h). It models only the objects such a file
 * builds: strings, small ints, bools, None, tuples, byte strings, the five
 * allowed globals (numpy's _reconstruct, ndarray and dtype, ml_dtypes'
 * bfloat16 and __main__.QuantizedWeight8bit), dtypes, arrays, one dict and
 * one QuantizedWeight8bit. Nothing is imported or called: REDUCE, NEWOBJ
 * and BUILD are matched against the exact argument shapes numpy and the
 * dataclass produce. Payload bytes are skipped with their file offset kept,
 * so a 3 GB array costs nothing to parse. The opcodes and argument shapes
 * are those Debian's python3 and numpy write when pickle.dump (protocol 4,
 * its default, as the official checkpoint.py calls it; protocol 3 too)
 * pickles a real dataclass holding real numpy arrays, the bf16 one of a
 * user-defined dtype registered through numpy's C API
 * (tests/pickle/ml_dtypes.c): PROTO, FRAME, SHORT_BINUNICODE, MEMOIZE,
 * STACK_GLOBAL, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK, BININT1, BININT,
 * TUPLE1/2/3, TUPLE, SHORT_BINBYTES, BINBYTES, BINGET, REDUCE, NEWFALSE,
 * NEWTRUE, NONE, BUILD, SETITEMS, STOP, and for protocol 3 GLOBAL, BINPUT
 * and BINUNICODE. Their close relatives that a larger value would produce
 * (LONG_BINPUT, LONG_BINGET, BININT2, SETITEM, BINUNICODE8, BINBYTES8) are
 * accepted too. docs/converting.md lists each assumption and the command
 * that confirmed it.
 */
#include "convert/pickle.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_OBJS 512
#define MAX_ITEMS 1024
#define MAX_STACK 64
#define MAX_MARKS 16
#define MAX_MEMO 1024
#define MAX_STR 64
#define INLINE_BYTES 16
#define RD_BUF 65536

size_t grok_ckpt_dtype_size(grok_ckpt_dtype t) { return t == GROK_CKPT_F32 ? 4 : t == GROK_CKPT_I8 ? 1 : 2; }

const char *grok_ckpt_dtype_name(grok_ckpt_dtype t) {
    return t == GROK_CKPT_F32 ? "float32" : t == GROK_CKPT_I8 ? "int8" : "bfloat16";
}

int grok_ckpt_pread_full(int fd, void *dst, size_t n, uint64_t off) {
    uint8_t *p = dst;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* ---- input: a whole buffer, or a file read through a small window ---- */
typedef struct {
    const char *name;
    const uint8_t *mem; /* memory mode */
    int fd;             /* file mode */
    uint64_t size;
    uint64_t pos;
    uint8_t *buf;
    uint64_t buf_off;
    size_t buf_len;
    /* framing (protocol 4): reads starting inside a frame must end in it */
    bool in_frame;
    uint64_t frame_end;
    uint64_t op_off; /* offset of the opcode being run, for messages */
    char *err;
    size_t err_size;
} reader;

static int fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(reader *r, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->err_size, "%s: byte %" PRIu64 ": %s", r->name, r->op_off, msg);
    return -1;
}

/* Checks that n bytes at the current position may be read, framing
 * included. */
static int rd_check(reader *r, uint64_t n, const char *what) {
    if (r->in_frame && r->pos >= r->frame_end) r->in_frame = false;
    if (n > r->size - r->pos)
        return fail(r, "truncated: %s needs %" PRIu64 " bytes, %" PRIu64 " left", what, n, r->size - r->pos);
    if (r->in_frame && n > r->frame_end - r->pos)
        return fail(r, "%s crosses the end of its frame at byte %" PRIu64, what, r->frame_end);
    return 0;
}

/* Returns a pointer to n (<= RD_BUF) bytes at the position and advances. */
static const uint8_t *rd_get(reader *r, size_t n, const char *what) {
    if (rd_check(r, n, what) < 0) return NULL;
    const uint8_t *p;
    if (r->mem) {
        p = r->mem + r->pos;
    } else {
        if (r->pos < r->buf_off || r->pos + n > r->buf_off + r->buf_len) {
            uint64_t left = r->size - r->pos;
            size_t want = left < RD_BUF ? (size_t)left : RD_BUF;
            if (grok_ckpt_pread_full(r->fd, r->buf, want, r->pos) < 0) {
                fail(r, "read error: %s", strerror(errno));
                return NULL;
            }
            r->buf_off = r->pos;
            r->buf_len = want;
        }
        p = r->buf + (r->pos - r->buf_off);
    }
    r->pos += n;
    return p;
}

static int rd_skip(reader *r, uint64_t n, const char *what) {
    if (rd_check(r, n, what) < 0) return -1;
    r->pos += n;
    return 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- objects ---- */
typedef enum {
    O_NONE,
    O_BOOL,
    O_INT,
    O_STR,
    O_BYTES,
    O_TUPLE,
    O_GLOBAL,
    O_DTYPE,
    O_ARRAY,
    O_DICT,
    O_QW8
} okind;

typedef enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_BF16, G_QW8 } gkind;

typedef struct {
    okind kind;
    bool built; /* dtype, array, qw8: BUILD applied */
    int64_t i;  /* int value, bool, global kind, dtype, item start, dict n */
    int32_t n;  /* tuple length / string length */
    char s[MAX_STR + 1];
    uint64_t off, len; /* bytes: file offset and length */
    uint8_t inl[INLINE_BYTES];
    grok_ckpt_array arr;
    int32_t a, b; /* qw8: weight/scales objects; dict: key/value item start */
} obj;

typedef struct {
    reader rd;
    obj objs[MAX_OBJS];
    int n_objs;
    int32_t items[MAX_ITEMS];
    int n_items;
    int32_t stack[MAX_STACK];
    int sp;
    int marks[MAX_MARKS];
    int n_marks;
    int32_t memo[MAX_MEMO];
    int n_memo; /* highest index set + 1 */
    int proto;
} machine;

static const char *kind_name(okind k) {
    static const char *names[] = {"None",
                                  "bool",
                                  "int",
                                  "str",
                                  "bytes",
                                  "tuple",
                                  "global",
                                  "dtype",
                                  "array",
                                  "dict",
                                  "QuantizedWeight8bit"};
    return names[k];
}

static int new_obj(machine *m, okind k) {
    if (m->n_objs >= MAX_OBJS) return fail(&m->rd, "more than %d objects: not a checkpoint pickle", MAX_OBJS);
    obj *o = &m->objs[m->n_objs];
    memset(o, 0, sizeof *o);
    o->kind = k;
    return m->n_objs++;
}

static int push(machine *m, int id) {
    if (id < 0) return -1;
    if (m->sp >= MAX_STACK) return fail(&m->rd, "stack deeper than %d", MAX_STACK);
    m->stack[m->sp++] = id;
    return 0;
}

static int pop(machine *m, const char *op) {
    int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) return fail(&m->rd, "stack underflow in %s", op);
    return m->stack[--m->sp];
}

static int top(machine *m, const char *op) {
    int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) return fail(&m->rd, "stack underflow in %s", op);
    return m->stack[m->sp - 1];
}

static int make_tuple(machine *m, const int32_t *ids, int n) {
    if (m->n_items + n > MAX_ITEMS) return fail(&m->rd, "more than %d tuple items", MAX_ITEMS);
    int t = new_obj(m, O_TUPLE);
    if (t < 0) return -1;
    m->objs[t].i = m->n_items;
    m->objs[t].n = n;
    for (int k = 0; k < n; k++) m->items[m->n_items++] = ids[k];
    return t;
}

static obj *item(machine *m, int tuple, int k) { return &m->objs[m->items[m->objs[tuple].i + k]]; }

/* Strings: short ASCII names only; anything longer is nothing this format
 * holds. */
static int make_str(machine *m, const uint8_t *p, uint64_t n) {
    if (n > MAX_STR) return fail(&m->rd, "string of %" PRIu64 " bytes: longer than any this format uses", n);
    int id = new_obj(m, O_STR);
    if (id < 0) return -1;
    memcpy(m->objs[id].s, p, (size_t)n);
    m->objs[id].s[n] = 0;
    m->objs[id].n = (int32_t)n;
    if (strlen(m->objs[id].s) != n) return fail(&m->rd, "string with a NUL byte");
    return id;
}

static int op_string(machine *m, int lenbytes) {
    const uint8_t *p = rd_get(&m->rd, (size_t)lenbytes, "string length");
    if (!p) return -1;
    uint64_t n = le(p, lenbytes);
    if (n > MAX_STR) return fail(&m->rd, "string of %" PRIu64 " bytes: longer than any this format uses", n);
    const uint8_t *s = rd_get(&m->rd, (size_t)n, "string");
    if (!s) return -1;
    return push(m, make_str(m, s, n));
}

static int op_bytes(machine *m, int lenbytes) {
    const uint8_t *p = rd_get(&m->rd, (size_t)lenbytes, "bytes length");
    if (!p) return -1;
    uint64_t n = le(p, lenbytes);
    int id = new_obj(m, O_BYTES);
    if (id < 0) return -1;
    obj *o = &m->objs[id];
    o->off = m->rd.pos;
    o->len = n;
    if (n <= INLINE_BYTES) {
        const uint8_t *s = rd_get(&m->rd, (size_t)n, "bytes");
        if (!s) return -1;
        memcpy(o->inl, s, (size_t)n);
    } else if (rd_skip(&m->rd, n, "bytes payload") < 0) {
        return -1;
    }
    return push(m, id);
}

static int resolve_global(machine *m, const char *mod, const char *name) {
    static const struct {
        const char *mod, *name;
        gkind k;
    } allow[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT}, /* numpy >= 2 */
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
        {"ml_dtypes", "bfloat16", G_BF16},
        {"__main__", "QuantizedWeight8bit", G_QW8},
    };
    for (size_t k = 0; k < sizeof allow / sizeof allow[0]; k++) {
        if (!strcmp(mod, allow[k].mod) && !strcmp(name, allow[k].name)) {
            int id = new_obj(m, O_GLOBAL);
            if (id < 0) return -1;
            m->objs[id].i = allow[k].k;
            snprintf(m->objs[id].s, sizeof m->objs[id].s, "%s", name);
            return push(m, id);
        }
    }
    return fail(&m->rd, "global '%s.%s' is not allowed", mod, name);
}

static bool is_int(const obj *o, int64_t v) { return (o->kind == O_INT || o->kind == O_BOOL) && o->i == v; }
static bool is_global(const obj *o, gkind k) { return o->kind == O_GLOBAL && o->i == k; }

/* REDUCE: _reconstruct(ndarray, (0,), b'b') or dtype(typestr|bfloat16, 0, 1). */
static int op_reduce(machine *m) {
    int args = pop(m, "REDUCE");
    int fn = args < 0 ? -1 : pop(m, "REDUCE");
    if (fn < 0) return -1;
    obj *f = &m->objs[fn], *a = &m->objs[args];
    if (a->kind != O_TUPLE) return fail(&m->rd, "REDUCE arguments are a %s, not a tuple", kind_name(a->kind));
    if (is_global(f, G_RECONSTRUCT)) {
        if (a->n != 3 || !is_global(item(m, args, 0), G_NDARRAY) || item(m, args, 1)->kind != O_TUPLE ||
            item(m, args, 1)->n != 1 || !is_int(&m->objs[m->items[item(m, args, 1)->i]], 0) ||
            item(m, args, 2)->kind != O_BYTES || item(m, args, 2)->len != 1 ||
            item(m, args, 2)->inl[0] != 'b')
            return fail(&m->rd, "_reconstruct called with arguments other than "
                                "(ndarray, (0,), b'b')");
        return push(m, new_obj(m, O_ARRAY));
    }
    if (is_global(f, G_DTYPE)) {
        if (a->n != 3 || !is_int(item(m, args, 1), 0) || !is_int(item(m, args, 2), 1))
            return fail(&m->rd, "dtype called with arguments other than (type, False, True)");
        obj *t = item(m, args, 0);
        grok_ckpt_dtype dt;
        if (is_global(t, G_BF16))
            dt = GROK_CKPT_BF16;
        else if (t->kind == O_STR && !strcmp(t->s, "f4"))
            dt = GROK_CKPT_F32;
        else if (t->kind == O_STR && !strcmp(t->s, "i1"))
            dt = GROK_CKPT_I8;
        else if (t->kind == O_STR)
            return fail(&m->rd, "dtype '%s' is not allowed (float32, int8, bfloat16 only)", t->s);
        else
            return fail(&m->rd, "dtype of a %s", kind_name(t->kind));
        int id = new_obj(m, O_DTYPE);
        if (id < 0) return -1;
        m->objs[id].i = dt;
        return push(m, id);
    }
    return fail(&m->rd, "REDUCE of a %s that is not an allowed callable", kind_name(f->kind));
}

/* numpy's dtype state (descriptor.c, arraydescr_reduce): version 3, the
 * byte order ('|' where it does not apply), no subarray, names or fields,
 * then element size and alignment, and the flags. Size and alignment are
 * -1, -1 for numpy's own fixed-size types; for an "extended" type
 * (PyTypeNum_ISEXTENDED: flexible or user-defined, which ml_dtypes'
 * bfloat16 is) numpy writes the real ones, 2 and 2 for bfloat16. */
static int build_dtype(machine *m, obj *d, int st) {
    static const struct {
        const char *order;
        int64_t elsize, align;
    } want[] = {
        [GROK_CKPT_F32] = {"<", -1, -1}, [GROK_CKPT_I8] = {"|", -1, -1}, [GROK_CKPT_BF16] = {"<", 2, 2}};
    const char *order = want[d->i].order;
    int64_t es = want[d->i].elsize, al = want[d->i].align;
    obj *s = &m->objs[st];
    if (s->kind != O_TUPLE || s->n != 8)
        return fail(&m->rd, "%s dtype state is not the 8-tuple numpy writes",
                    grok_ckpt_dtype_name((grok_ckpt_dtype)d->i));
    obj *e = item(m, st, 1);
    if (!is_int(item(m, st, 0), 3) || e->kind != O_STR || strcmp(e->s, order) ||
        item(m, st, 2)->kind != O_NONE || item(m, st, 3)->kind != O_NONE || item(m, st, 4)->kind != O_NONE ||
        item(m, st, 5)->kind != O_INT || item(m, st, 5)->i != es || item(m, st, 6)->kind != O_INT ||
        item(m, st, 6)->i != al || item(m, st, 7)->kind != O_INT)
        return fail(&m->rd,
                    "%s dtype state is not (3, '%s', None, None, None, %" PRId64 ", %" PRId64
                    ", flags), which numpy writes for it",
                    grok_ckpt_dtype_name((grok_ckpt_dtype)d->i), order, es, al);
    d->built = true;
    return 0;
}

static int build_array(machine *m, obj *a, int st) {
    obj *s = &m->objs[st];
    if (s->kind != O_TUPLE || s->n != 5) return fail(&m->rd, "array state is not the 5-tuple numpy writes");
    obj *shape = item(m, st, 1), *dt = item(m, st, 2), *data = item(m, st, 4);
    if (!is_int(item(m, st, 0), 1)) return fail(&m->rd, "array state version is not 1");
    if (shape->kind != O_TUPLE)
        return fail(&m->rd, "array shape is a %s, not a tuple", kind_name(shape->kind));
    if (shape->n > GROK_CKPT_MAX_DIMS)
        return fail(&m->rd, "array of %d dimensions (at most %d)", (int)shape->n, GROK_CKPT_MAX_DIMS);
    if (dt->kind != O_DTYPE || !dt->built) return fail(&m->rd, "array dtype is not a complete dtype");
    if (item(m, st, 3)->kind != O_BOOL || item(m, st, 3)->i != 0)
        return fail(&m->rd, "array is not in C order (is_fortran must be False)");
    if (data->kind != O_BYTES) return fail(&m->rd, "array data is a %s, not bytes", kind_name(data->kind));
    grok_ckpt_array *r = &a->arr;
    r->dtype = (grok_ckpt_dtype)dt->i;
    r->n_dims = shape->n;
    uint64_t n = 1;
    for (int k = 0; k < shape->n; k++) {
        obj *d = &m->objs[m->items[shape->i + k]];
        if (d->kind != O_INT || d->i < 0)
            return fail(&m->rd, "array dimension %d is not a non-negative int", k);
        r->shape[k] = d->i;
        if (d->i != 0 && n > (UINT64_C(1) << 62) / (uint64_t)d->i)
            return fail(&m->rd, "array dimensions overflow");
        n *= (uint64_t)d->i;
    }
    size_t es = grok_ckpt_dtype_size(r->dtype);
    if (n > (UINT64_C(1) << 62) / es) return fail(&m->rd, "array dimensions overflow");
    if (data->len != n * es)
        return fail(&m->rd, "array payload is %" PRIu64 " bytes, shape and dtype %s say %" PRIu64, data->len,
                    grok_ckpt_dtype_name(r->dtype), n * es);
    r->n_elements = (int64_t)n;
    r->offset = data->off;
    r->nbytes = data->len;
    a->built = true;
    return 0;
}

static int build_qw8(machine *m, obj *q, int st) {
    obj *d = &m->objs[st];
    if (d->kind != O_DICT || d->n != 2)
        return fail(&m->rd, "QuantizedWeight8bit state is not a dict of weight and scales");
    int w = -1, s = -1;
    for (int k = 0; k < 2; k++) {
        obj *key = &m->objs[m->items[d->i + 2 * k]];
        int val = m->items[d->i + 2 * k + 1];
        if (key->kind == O_STR && !strcmp(key->s, "weight") && w < 0)
            w = val;
        else if (key->kind == O_STR && !strcmp(key->s, "scales") && s < 0)
            s = val;
        else
            return fail(&m->rd, "QuantizedWeight8bit state has an unexpected key");
    }
    if (m->objs[w].kind != O_ARRAY || !m->objs[w].built || m->objs[s].kind != O_ARRAY || !m->objs[s].built)
        return fail(&m->rd, "QuantizedWeight8bit weight/scales are not complete arrays");
    if (m->objs[w].arr.dtype != GROK_CKPT_I8)
        return fail(&m->rd, "QuantizedWeight8bit weight is %s, not int8",
                    grok_ckpt_dtype_name(m->objs[w].arr.dtype));
    if (m->objs[s].arr.dtype != GROK_CKPT_BF16)
        return fail(&m->rd, "QuantizedWeight8bit scales are %s, not bfloat16",
                    grok_ckpt_dtype_name(m->objs[s].arr.dtype));
    q->a = w;
    q->b = s;
    q->built = true;
    return 0;
}

static int op_build(machine *m) {
    int st = pop(m, "BUILD");
    int id = st < 0 ? -1 : top(m, "BUILD");
    if (id < 0) return -1;
    obj *o = &m->objs[id];
    if (o->built) return fail(&m->rd, "BUILD applied twice to one %s", kind_name(o->kind));
    switch (o->kind) {
    case O_DTYPE: return build_dtype(m, o, st);
    case O_ARRAY: return build_array(m, o, st);
    case O_QW8: return build_qw8(m, o, st);
    default: return fail(&m->rd, "BUILD of a %s", kind_name(o->kind));
    }
}

/* SETITEM(S) into the one dict the format has: string keys, at most 4. */
static int op_setitems(machine *m, bool many) {
    int32_t pairs[8];
    int np = 0;
    if (many) {
        if (m->n_marks == 0) return fail(&m->rd, "SETITEMS without a MARK");
        int base = m->marks[--m->n_marks];
        int n = m->sp - base;
        if (n % 2 || n > 8) return fail(&m->rd, "SETITEMS with %d stack items", n);
        memcpy(pairs, &m->stack[base], (size_t)n * sizeof(int32_t));
        np = n;
        m->sp = base;
    } else {
        int v = pop(m, "SETITEM");
        int k = v < 0 ? -1 : pop(m, "SETITEM");
        if (k < 0) return -1;
        pairs[0] = k;
        pairs[1] = v;
        np = 2;
    }
    int d = top(m, many ? "SETITEMS" : "SETITEM");
    if (d < 0) return -1;
    obj *o = &m->objs[d];
    if (o->kind != O_DICT) return fail(&m->rd, "SETITEM into a %s", kind_name(o->kind));
    if (o->n + np / 2 > 4) return fail(&m->rd, "dict with more than 4 items");
    /* the dict's items live in a fresh run of items: copy old + new */
    if (m->n_items + 2 * o->n + np > MAX_ITEMS) return fail(&m->rd, "more than %d tuple items", MAX_ITEMS);
    int start = m->n_items;
    for (int k = 0; k < 2 * o->n; k++) m->items[m->n_items++] = m->items[o->i + k];
    for (int k = 0; k < np; k++) {
        if (k % 2 == 0 && m->objs[pairs[k]].kind != O_STR)
            return fail(&m->rd, "dict key is a %s", kind_name(m->objs[pairs[k]].kind));
        m->items[m->n_items++] = pairs[k];
    }
    o->i = start;
    o->n += np / 2;
    return 0;
}

static int memo_put(machine *m, uint64_t idx) {
    if (idx >= MAX_MEMO) return fail(&m->rd, "memo index %" PRIu64 " beyond %d", idx, MAX_MEMO);
    int id = top(m, "memo put");
    if (id < 0) return -1;
    while ((uint64_t)m->n_memo <= idx) m->memo[m->n_memo++] = -1;
    if (m->memo[idx] >= 0) return fail(&m->rd, "memo index %" PRIu64 " set twice", idx);
    m->memo[idx] = id;
    return 0;
}

static int memo_get(machine *m, uint64_t idx) {
    if (idx >= (uint64_t)m->n_memo || m->memo[idx] < 0)
        return fail(&m->rd, "memo get of unset index %" PRIu64, idx);
    int id = m->memo[idx];
    obj *o = &m->objs[id];
    /* Only immutable values are ever shared by this format: a second
     * reference to an array, its payload, a dict or the weight object
     * would make two tensors alias. */
    bool ok = o->kind == O_STR || o->kind == O_GLOBAL || o->kind == O_INT || o->kind == O_BOOL ||
              o->kind == O_NONE || (o->kind == O_DTYPE && o->built) ||
              (o->kind == O_BYTES && o->len <= INLINE_BYTES) || o->kind == O_TUPLE;
    if (o->kind == O_TUPLE)
        for (int k = 0; ok && k < o->n; k++)
            ok = item(m, id, k)->kind == O_INT || item(m, id, k)->kind == O_BOOL ||
                 (item(m, id, k)->kind == O_BYTES && item(m, id, k)->len <= INLINE_BYTES) ||
                 item(m, id, k)->kind == O_GLOBAL || item(m, id, k)->kind == O_TUPLE;
    if (!ok) return fail(&m->rd, "memo get of a %s, which this format never shares", kind_name(o->kind));
    return push(m, id);
}

static int run(machine *m, grok_ckpt_entry *out) {
    reader *r = &m->rd;
    bool first = true;
    for (;;) {
        r->op_off = r->pos;
        const uint8_t *p = rd_get(r, 1, "opcode");
        if (!p) return -1;
        uint8_t op = *p;
        if (first && op != 0x80) return fail(r, "does not start with PROTO: not a protocol 2+ pickle");
        first = false;
        switch (op) {
        case 0x80: { /* PROTO */
            if (r->op_off != 0) return fail(r, "PROTO after the start");
            const uint8_t *v = rd_get(r, 1, "PROTO");
            if (!v) return -1;
            /* protocol 2 pickles bytes as text through _codecs.encode and
             * 5 moves arrays to _frombuffer with out-of-band buffers; the
             * release was written by pickle.dump's default, 4 */
            if (*v < 3 || *v > 4) return fail(r, "pickle protocol %d (3 or 4 expected)", *v);
            m->proto = *v;
            break;
        }
        case 0x95: { /* FRAME */
            const uint8_t *v = rd_get(r, 8, "FRAME");
            if (!v) return -1;
            uint64_t n = le(v, 8);
            if (m->proto < 4) return fail(r, "FRAME in a protocol %d pickle", m->proto);
            if (r->in_frame && r->pos < r->frame_end)
                return fail(r, "FRAME before the end of the current frame");
            if (n > r->size - r->pos)
                return fail(r, "truncated: FRAME of %" PRIu64 " bytes, %" PRIu64 " left", n,
                            r->size - r->pos);
            r->in_frame = true;
            r->frame_end = r->pos + n;
            break;
        }
        case 0x8c: /* SHORT_BINUNICODE */
            if (op_string(m, 1) < 0) return -1;
            break;
        case 'X': /* BINUNICODE */
            if (op_string(m, 4) < 0) return -1;
            break;
        case 0x8d: /* BINUNICODE8 */
            if (op_string(m, 8) < 0) return -1;
            break;
        case 'C': /* SHORT_BINBYTES */
            if (op_bytes(m, 1) < 0) return -1;
            break;
        case 'B': /* BINBYTES */
            if (op_bytes(m, 4) < 0) return -1;
            break;
        case 0x8e: /* BINBYTES8 */
            if (op_bytes(m, 8) < 0) return -1;
            break;
        case 0x94: /* MEMOIZE */
            if (memo_put(m, (uint64_t)m->n_memo) < 0) return -1;
            break;
        case 'q':
        case 'r': { /* BINPUT, LONG_BINPUT */
            int n = op == 'q' ? 1 : 4;
            const uint8_t *v = rd_get(r, (size_t)n, "PUT");
            if (!v || memo_put(m, le(v, n)) < 0) return -1;
            break;
        }
        case 'h':
        case 'j': { /* BINGET, LONG_BINGET */
            int n = op == 'h' ? 1 : 4;
            const uint8_t *v = rd_get(r, (size_t)n, "GET");
            if (!v || memo_get(m, le(v, n)) < 0) return -1;
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            int nm = pop(m, "STACK_GLOBAL");
            int md = nm < 0 ? -1 : pop(m, "STACK_GLOBAL");
            if (md < 0) return -1;
            if (m->objs[nm].kind != O_STR || m->objs[md].kind != O_STR)
                return fail(r, "STACK_GLOBAL of non-strings");
            if (resolve_global(m, m->objs[md].s, m->objs[nm].s) < 0) return -1;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            char parts[2][MAX_STR + 1];
            for (int k = 0; k < 2; k++) {
                size_t n = 0;
                for (;;) {
                    const uint8_t *c = rd_get(r, 1, "GLOBAL");
                    if (!c) return -1;
                    if (*c == '\n') break;
                    if (n >= MAX_STR || *c < 0x20 || *c > 0x7e)
                        return fail(r, "GLOBAL name too long or not printable");
                    parts[k][n++] = (char)*c;
                }
                parts[k][n] = 0;
            }
            if (resolve_global(m, parts[0], parts[1]) < 0) return -1;
            break;
        }
        case ')': { /* EMPTY_TUPLE */
            if (push(m, make_tuple(m, NULL, 0)) < 0) return -1;
            break;
        }
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            int n = op - 0x84;
            int32_t ids[3];
            for (int k = n - 1; k >= 0; k--)
                if ((ids[k] = pop(m, "TUPLEn")) < 0) return -1;
            if (push(m, make_tuple(m, ids, n)) < 0) return -1;
            break;
        }
        case '(': /* MARK */
            if (m->n_marks >= MAX_MARKS) return fail(r, "more than %d nested MARKs", MAX_MARKS);
            m->marks[m->n_marks++] = m->sp;
            break;
        case 't': { /* TUPLE */
            if (m->n_marks == 0) return fail(r, "TUPLE without a MARK");
            int base = m->marks[--m->n_marks];
            int n = m->sp - base;
            if (n > 8) return fail(r, "tuple of %d items: larger than any this format uses", n);
            int32_t ids[8];
            memcpy(ids, &m->stack[base], (size_t)n * sizeof(int32_t));
            m->sp = base;
            if (push(m, make_tuple(m, ids, n)) < 0) return -1;
            break;
        }
        case 'K':
        case 'M':
        case 'J': { /* BININT1, BININT2, BININT */
            int n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            const uint8_t *v = rd_get(r, (size_t)n, "BININT");
            if (!v) return -1;
            int id = new_obj(m, O_INT);
            if (id < 0) return -1;
            uint64_t u = le(v, n);
            m->objs[id].i = n == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            if (push(m, id) < 0) return -1;
            break;
        }
        case 'N':
        case 0x88:
        case 0x89: { /* NONE, NEWTRUE, NEWFALSE */
            int id = new_obj(m, op == 'N' ? O_NONE : O_BOOL);
            if (id < 0) return -1;
            m->objs[id].i = op == 0x88;
            if (push(m, id) < 0) return -1;
            break;
        }
        case 'R': /* REDUCE */
            if (op_reduce(m) < 0) return -1;
            break;
        case 0x81: { /* NEWOBJ */
            int args = pop(m, "NEWOBJ");
            int cls = args < 0 ? -1 : pop(m, "NEWOBJ");
            if (cls < 0) return -1;
            if (!is_global(&m->objs[cls], G_QW8) || m->objs[args].kind != O_TUPLE || m->objs[args].n != 0)
                return fail(r, "NEWOBJ other than QuantizedWeight8bit()");
            if (push(m, new_obj(m, O_QW8)) < 0) return -1;
            break;
        }
        case '}': /* EMPTY_DICT */
            if (push(m, new_obj(m, O_DICT)) < 0) return -1;
            break;
        case 's':
        case 'u': /* SETITEM, SETITEMS */
            if (op_setitems(m, op == 'u') < 0) return -1;
            break;
        case 'b': /* BUILD */
            if (op_build(m) < 0) return -1;
            break;
        case '.': { /* STOP */
            if (m->n_marks) return fail(r, "STOP with an open MARK");
            if (m->sp != 1) return fail(r, "STOP with %d objects on the stack (1 expected)", m->sp);
            if (r->pos != r->size) return fail(r, "%" PRIu64 " bytes after STOP", r->size - r->pos);
            obj *o = &m->objs[m->stack[0]];
            memset(out, 0, sizeof *out);
            out->file_size = r->size;
            if (o->kind == O_ARRAY && o->built) {
                out->weight = o->arr;
            } else if (o->kind == O_QW8 && o->built) {
                out->quantized = true;
                out->weight = m->objs[o->a].arr;
                out->scales = m->objs[o->b].arr;
            } else {
                return fail(r, "pickle holds a %s, not an array or QuantizedWeight8bit", kind_name(o->kind));
            }
            return 0;
        }
        default: return fail(r, "opcode 0x%02x is not allowed", op);
        }
    }
}

/* A machine and a read buffer kept across files: a checkpoint is hundreds
 * of files, and allocating ~190 KB per file made the allocator grow and
 * trim the heap each time (a TLB flush per trim, ~10% of a conversion). */
struct grok_ckpt_parser {
    machine m;
    uint8_t buf[RD_BUF];
};

grok_ckpt_parser *grok_ckpt_parser_create(void) { return malloc(sizeof(grok_ckpt_parser)); }

void grok_ckpt_parser_free(grok_ckpt_parser *p) { free(p); }

/* Runs the machine from a clean state; objects and memo slots are
 * initialized as they are created, so the counters are all to reset. */
static int parse(machine *m, const reader *rd, grok_ckpt_entry *out) {
    m->rd = *rd;
    m->n_objs = 0;
    m->n_items = 0;
    m->sp = 0;
    m->n_marks = 0;
    m->n_memo = 0;
    m->proto = 0;
    return run(m, out);
}

int grok_ckpt_pickle_parse_mem(const char *name, const uint8_t *data, size_t len, grok_ckpt_entry *out,
                               char *err, size_t err_size) {
    reader rd = {.name = name, .mem = data, .fd = -1, .size = len, .err = err, .err_size = err_size};
    static const uint8_t empty[1];
    if (!data) rd.mem = empty;
    machine *m = malloc(sizeof *m);
    if (!m) {
        snprintf(err, err_size, "%s: out of memory", name);
        return -1;
    }
    int rc = parse(m, &rd, out);
    free(m);
    return rc;
}

int grok_ckpt_parser_parse_file(grok_ckpt_parser *p, const char *path, grok_ckpt_entry *out, char *err,
                                size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    reader rd = {.name = path,
                 .fd = fd,
                 .size = (uint64_t)st.st_size,
                 .buf = p->buf,
                 .err = err,
                 .err_size = err_size};
    int rc = parse(&p->m, &rd, out);
    close(fd);
    return rc;
}

int grok_ckpt_pickle_parse_file(const char *path, grok_ckpt_entry *out, char *err, size_t err_size) {
    grok_ckpt_parser *p = grok_ckpt_parser_create();
    if (!p) {
        snprintf(err, err_size, "%s: out of memory", path);
        return -1;
    }
    int rc = grok_ckpt_parser_parse_file(p, path, out, err, err_size);
    grok_ckpt_parser_free(p);
    return rc;
}

int grok_ckpt_check_scales(const char *name, const grok_ckpt_array *a, const uint16_t *vals, char *err,
                           size_t err_size) {
    for (int64_t k = 0; k < a->n_elements; k++) {
        if ((vals[k] & 0x7f80) == 0x7f80) {
            snprintf(err, err_size, "%s: byte %" PRIu64 ": scale %" PRId64 " is %s", name,
                     a->offset + 2 * (uint64_t)k, k, (vals[k] & 0x7f) ? "NaN" : "Inf");
            return -1;
        }
    }
    return 0;
}

int grok_ckpt_read_scales(int fd, const char *name, const grok_ckpt_array *a, uint16_t *dst, char *err,
                          size_t err_size) {
    if (grok_ckpt_pread_full(fd, dst, a->nbytes, a->offset) < 0) {
        snprintf(err, err_size, "%s: byte %" PRIu64 ": cannot read %" PRIu64 " bytes of scales", name,
                 a->offset, a->nbytes);
        return -1;
    }
    return grok_ckpt_check_scales(name, a, dst, err, err_size);
}
