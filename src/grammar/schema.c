/*
 * schema.c - JSON Schema to GBNF. The grammar it writes accepts only JSON
 * texts that validate against the schema (it may accept fewer: property
 * order is fixed, whitespace is bounded, numbers have at most 16 digits
 * after the point), so a constrained generation always validates.
 *
 * Supported: type (one or a list), enum, const, properties, required,
 * additionalProperties (false, true or a schema; absent means no extra
 * properties when properties are given, as llama.cpp does), items,
 * prefixItems (and the older items-array / additionalItems), minItems,
 * maxItems, minLength, maxLength, minimum / maximum / exclusiveMinimum /
 * exclusiveMaximum on integers, anyOf, oneOf (when its branches cannot
 * both match: different types, or a required property with different
 * const values; otherwise the value could match two and fail), allOf of
 * one schema, nullable (OpenAPI), $ref to any JSON pointer inside the
 * document (#, #/$defs/..., #/definitions/..., recursion included), the
 * formats date, time, date-time, uuid, email and ipv4, and boolean schemas.
 * Annotations (title, description, default, examples, ...) and keywords
 * unknown to JSON Schema are ignored, as validators ignore them. Every
 * validation keyword it cannot enforce is refused, naming the keyword and
 * the JSON pointer of its schema.
 *
 * Rules are named after the path (root, root-name, item, ...), and
 * identical rule bodies are written once.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "grammar/grammar_internal.h"
#include "util/buf.h"
#include "util/utf8.h"

#define MAX_DEPTH 128
#define MAX_DIGITS 18 /* an integer with no upper bound has at most this many digits */

typedef struct {
    char *ptr;  /* JSON pointer of a $ref target */
    char *name; /* its rule */
} ref_rule;

typedef struct {
    cJSON *doc;
    const char *prefix; /* put before every rule name but the primitives' (NULL: none) */
    char **names, **bodies;
    size_t n_rules, cap_rules;
    ref_rule *refs;
    size_t n_refs, cap_refs;
    char *err;
    size_t err_size;
    bool failed;
    int depth;
} conv;

__attribute__((format(printf, 3, 4))) static void fail(conv *c, const char *ptr, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    int k = snprintf(c->err, c->err_size, "#%s: ", ptr);
    if (k < 0 || (size_t)k >= c->err_size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->err_size - (size_t)k, fmt, ap);
    va_end(ap);
}

static void oom(conv *c) {
    if (!c->failed) snprintf(c->err, c->err_size, "out of memory");
    c->failed = true;
}

/* ---- rules ---- */

static bool name_taken(const conv *c, const char *name) {
    for (size_t i = 0; i < c->n_rules; i++)
        if (!strcmp(c->names[i], name)) return true;
    return false;
}

/* A rule name from a hint: lowercase letters, digits and dashes, unique. */
static char *fresh_name(conv *c, const char *hint) {
    char base[64];
    size_t k = 0;
    for (const char *p = hint; *p && k < sizeof base - 12; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            base[k++] = ch;
        else if (k && base[k - 1] != '-')
            base[k++] = '-';
    }
    while (k && base[k - 1] == '-') k--;
    if (!k) base[k++] = 'r';
    base[k] = '\0';
    char pre[80], buf[160];
    snprintf(pre, sizeof pre, "%s%s%s", c->prefix ? c->prefix : "", c->prefix ? "-" : "", base);
    snprintf(buf, sizeof buf, "%s", pre);
    for (int i = 2; name_taken(c, buf); i++) snprintf(buf, sizeof buf, "%s-%d", pre, i);
    return strdup(buf);
}

static bool add_rule_slot(conv *c) {
    if (c->n_rules == c->cap_rules) {
        size_t cap = c->cap_rules ? c->cap_rules * 2 : 32;
        char **n = realloc(c->names, cap * sizeof *n);
        if (n) c->names = n;
        char **b = realloc(c->bodies, cap * sizeof *b);
        if (b) c->bodies = b;
        if (!n || !b) return false;
        c->cap_rules = cap;
    }
    return true;
}

/* Adds name ::= body (taking body) and returns a copy of the name; a rule
 * with the same body already there is reused. */
static char *add_rule(conv *c, const char *hint, char *body) {
    if (!body) {
        oom(c);
        return NULL;
    }
    for (size_t i = 0; i < c->n_rules; i++)
        if (c->bodies[i] && !strcmp(c->bodies[i], body)) {
            free(body);
            return strdup(c->names[i]);
        }
    char *name = fresh_name(c, hint);
    if (!name || !add_rule_slot(c)) {
        free(name);
        free(body);
        oom(c);
        return NULL;
    }
    c->names[c->n_rules] = name;
    c->bodies[c->n_rules] = body;
    c->n_rules++;
    return strdup(name);
}

/* Reserves a name whose body comes later (recursive $ref targets). */
static char *reserve_rule(conv *c, const char *hint) {
    char *name = fresh_name(c, hint);
    if (!name || !add_rule_slot(c)) {
        free(name);
        oom(c);
        return NULL;
    }
    c->names[c->n_rules] = name;
    c->bodies[c->n_rules] = NULL;
    c->n_rules++;
    return strdup(name);
}

static void set_body(conv *c, const char *name, char *body) {
    for (size_t i = 0; i < c->n_rules; i++)
        if (!strcmp(c->names[i], name)) {
            free(c->bodies[i]);
            c->bodies[i] = body;
            return;
        }
    free(body);
}

/* The fixed rules the others use, added when first asked for. */
static const char *const PRIMITIVES[][2] = {
    {"ws", "( \" \" | \"\\n\" [ \\t]{0,20} )?"},
    {"json-hex4", "( [0-9a-cA-Ce-fE-F] [0-9a-fA-F] | [dD] [0-7] ) [0-9a-fA-F]{2}"},
    {"json-char", "[^\"\\\\\\x00-\\x1F\\x7F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" json-hex4 )"},
    {"json-string", "\"\\\"\" json-char* \"\\\"\""},
    {"json-int", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )"},
    {"json-number", "json-int ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?"},
    {"json-bool", "\"true\" | \"false\""},
    {"json-null", "\"null\""},
    {"json-value", "json-object | json-array | json-string | json-number | json-bool | json-null"},
    {"json-object", "\"{\" ws ( json-string ws \":\" ws json-value ws ( \",\" ws json-string ws \":\" ws "
                    "json-value ws )* )? \"}\""},
    {"json-array", "\"[\" ws ( json-value ws ( \",\" ws json-value ws )* )? \"]\""},
    /* formats */
    {"fmt-leap-year",
     "[0-9]{2} ( \"0\" [48] | [2468] [048] | [13579] [26] ) | ( [02468] [048] | [13579] [26] ) \"00\""},
    {"fmt-date", "[0-9]{4} \"-\" ( ( \"0\" [13578] | \"1\" [02] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" "
                 "[01] ) | ( \"0\" [469] | \"11\" ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"30\" ) | \"02-\" ( "
                 "\"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8] ) ) | fmt-leap-year \"-02-29\""},
    {"fmt-time", "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? ( "
                 "\"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )"},
    {"fmt-date-time", "fmt-date \"T\" fmt-time"},
    {"fmt-uuid",
     "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}"},
    {"fmt-email-atom", "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+"},
    {"fmt-email-label", "[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,61} [a-zA-Z0-9] )?"},
    {"fmt-email",
     "fmt-email-atom ( \".\" fmt-email-atom )* \"@\" fmt-email-label ( \".\" fmt-email-label )+"},
    {"fmt-ipv4-octet", "\"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9] [0-9] | [0-9]"},
    {"fmt-ipv4", "fmt-ipv4-octet \".\" fmt-ipv4-octet \".\" fmt-ipv4-octet \".\" fmt-ipv4-octet"},
};

/* What each primitive uses, so asking for one brings its dependencies. */
static const char *const PRIMITIVE_DEPS[][8] = {
    {"ws"},
    {"json-hex4"},
    {"json-char", "json-hex4"},
    {"json-string", "json-char"},
    {"json-int"},
    {"json-number", "json-int"},
    {"json-bool"},
    {"json-null"},
    {"json-value", "json-object", "json-array", "json-string", "json-number", "json-bool", "json-null"},
    {"json-object", "ws", "json-string", "json-value"},
    {"json-array", "ws", "json-value"},
    {"fmt-leap-year"},
    {"fmt-date", "fmt-leap-year"},
    {"fmt-time"},
    {"fmt-date-time", "fmt-date", "fmt-time"},
    {"fmt-uuid"},
    {"fmt-email-atom"},
    {"fmt-email-label"},
    {"fmt-email", "fmt-email-atom", "fmt-email-label"},
    {"fmt-ipv4-octet"},
    {"fmt-ipv4", "fmt-ipv4-octet"},
};

static const char *prim(conv *c, const char *name) {
    size_t np = sizeof PRIMITIVES / sizeof PRIMITIVES[0];
    for (size_t i = 0; i < np; i++) {
        if (strcmp(PRIMITIVES[i][0], name)) continue;
        if (name_taken(c, name)) return PRIMITIVES[i][0];
        if (!add_rule_slot(c)) {
            oom(c);
            return name;
        }
        c->names[c->n_rules] = strdup(name);
        c->bodies[c->n_rules] = strdup(PRIMITIVES[i][1]);
        if (!c->names[c->n_rules] || !c->bodies[c->n_rules]) oom(c);
        c->n_rules++;
        for (int d = 1; d < 8 && PRIMITIVE_DEPS[i][d]; d++) prim(c, PRIMITIVE_DEPS[i][d]);
        return PRIMITIVES[i][0];
    }
    return name;
}

/* ---- literals ---- */

/* Appends s as a GBNF string literal. */
static void gbnf_literal(grok_strbuf *b, const char *s, size_t n) {
    grok_strbuf_adds(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"')
            grok_strbuf_adds(b, "\\\"");
        else if (ch == '\\')
            grok_strbuf_adds(b, "\\\\");
        else if (ch == '\n')
            grok_strbuf_adds(b, "\\n");
        else if (ch == '\r')
            grok_strbuf_adds(b, "\\r");
        else if (ch == '\t')
            grok_strbuf_adds(b, "\\t");
        else if (ch < 0x20 || ch == 0x7F)
            grok_strbuf_addf(b, "\\x%02X", ch);
        else
            grok_strbuf_add(b, (const char *)&ch, 1);
    }
    grok_strbuf_adds(b, "\"");
}

/* Appends the JSON text of a string (quotes, escapes). */
static void json_string(grok_strbuf *b, const char *s) {
    grok_strbuf_adds(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"')
            grok_strbuf_adds(b, "\\\"");
        else if (*p == '\\')
            grok_strbuf_adds(b, "\\\\");
        else if (*p == '\n')
            grok_strbuf_adds(b, "\\n");
        else if (*p == '\r')
            grok_strbuf_adds(b, "\\r");
        else if (*p == '\t')
            grok_strbuf_adds(b, "\\t");
        else if (*p < 0x20)
            grok_strbuf_addf(b, "\\u%04x", *p);
        else
            grok_strbuf_add(b, (const char *)p, 1);
    }
    grok_strbuf_adds(b, "\"");
}

/* The compact JSON text of a value, exactly as a validator will compare
 * it; false (with the error set) for a number that a double cannot hold
 * exactly. */
static bool json_text(conv *c, grok_strbuf *b, const cJSON *v, const char *ptr) {
    if (cJSON_IsNull(v)) {
        grok_strbuf_adds(b, "null");
    } else if (cJSON_IsTrue(v)) {
        grok_strbuf_adds(b, "true");
    } else if (cJSON_IsFalse(v)) {
        grok_strbuf_adds(b, "false");
    } else if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (!isfinite(x)) {
            fail(c, ptr, "a number that is not finite");
            return false;
        }
        if (x == floor(x) && fabs(x) < 9007199254740992.0) {
            grok_strbuf_addf(b, "%.0f", x);
        } else if (x == floor(x)) {
            fail(c, ptr, "the integer %.17g is too large to reproduce exactly", x);
            return false;
        } else {
            grok_strbuf_addf(b, "%.17g", x);
        }
    } else if (cJSON_IsString(v)) {
        json_string(b, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        grok_strbuf_adds(b, "[");
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            if (i) grok_strbuf_adds(b, ",");
            if (!json_text(c, b, e, ptr)) return false;
        }
        grok_strbuf_adds(b, "]");
    } else if (cJSON_IsObject(v)) {
        grok_strbuf_adds(b, "{");
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            if (i) grok_strbuf_adds(b, ",");
            json_string(b, e->string);
            grok_strbuf_adds(b, ":");
            if (!json_text(c, b, e, ptr)) return false;
        }
        grok_strbuf_adds(b, "}");
    }
    return true;
}

/* ---- JSON types of schemas, for oneOf ---- */

enum { T_NULL = 1, T_BOOL = 2, T_OBJECT = 4, T_ARRAY = 8, T_NUMBER = 16, T_STRING = 32, T_ALL = 63 };

static int type_bit(const char *t) {
    if (!strcmp(t, "null")) return T_NULL;
    if (!strcmp(t, "boolean")) return T_BOOL;
    if (!strcmp(t, "object")) return T_OBJECT;
    if (!strcmp(t, "array")) return T_ARRAY;
    if (!strcmp(t, "number") || !strcmp(t, "integer")) return T_NUMBER;
    if (!strcmp(t, "string")) return T_STRING;
    return 0;
}

static int value_type(const cJSON *v) {
    if (cJSON_IsNull(v)) return T_NULL;
    if (cJSON_IsBool(v)) return T_BOOL;
    if (cJSON_IsObject(v)) return T_OBJECT;
    if (cJSON_IsArray(v)) return T_ARRAY;
    if (cJSON_IsNumber(v)) return T_NUMBER;
    return T_STRING;
}

static const cJSON *resolve(conv *c, const char *ref);

/* The JSON types a schema's values can have (T_ALL when unknown). */
static int schema_types(conv *c, const cJSON *s, int depth) {
    if (depth > 16 || !cJSON_IsObject(s)) return T_ALL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    if (cJSON_IsString(r)) {
        const cJSON *t = resolve(c, r->valuestring);
        return t ? schema_types(c, t, depth + 1) : T_ALL;
    }
    const cJSON *cst = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (cst) return value_type(cst);
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (cJSON_IsArray(en)) {
        int m = 0;
        for (const cJSON *e = en->child; e; e = e->next) m |= value_type(e);
        return m;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    int m = 0;
    if (cJSON_IsString(t)) m = type_bit(t->valuestring);
    if (cJSON_IsArray(t))
        for (const cJSON *e = t->child; e; e = e->next)
            if (cJSON_IsString(e)) m |= type_bit(e->valuestring);
    if (m) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "nullable"))) m |= T_NULL;
        return m;
    }
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    if (!any) any = cJSON_GetObjectItemCaseSensitive(s, "oneOf");
    if (cJSON_IsArray(any)) {
        for (const cJSON *e = any->child; e; e = e->next) m |= schema_types(c, e, depth + 1);
        return m;
    }
    if (cJSON_GetObjectItemCaseSensitive(s, "properties")) return T_OBJECT;
    if (cJSON_GetObjectItemCaseSensitive(s, "items") || cJSON_GetObjectItemCaseSensitive(s, "prefixItems"))
        return T_ARRAY;
    return T_ALL;
}

/* A property every value of s has, with a fixed value: its const. */
static const cJSON *required_const(conv *c, const cJSON *s, const char *prop) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    if (cJSON_IsString(r)) s = resolve(c, r->valuestring);
    if (!cJSON_IsObject(s)) return NULL;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    bool is_req = false;
    for (const cJSON *e = cJSON_IsArray(req) ? req->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && !strcmp(e->valuestring, prop)) is_req = true;
    if (!is_req) return NULL;
    const cJSON *p =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "properties"), prop);
    if (!cJSON_IsObject(p)) return NULL;
    const cJSON *cst = cJSON_GetObjectItemCaseSensitive(p, "const");
    if (cst) return cst;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(p, "enum");
    if (cJSON_IsArray(en) && cJSON_GetArraySize(en) == 1) return en->child;
    return NULL;
}

/* Can no value match both a and b? */
static bool disjoint(conv *c, const cJSON *a, const cJSON *b) {
    if (!(schema_types(c, a, 0) & schema_types(c, b, 0))) return true;
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(a, "$ref");
    const cJSON *sa = cJSON_IsString(ra) ? resolve(c, ra->valuestring) : a;
    const cJSON *props = cJSON_IsObject(sa) ? cJSON_GetObjectItemCaseSensitive(sa, "properties") : NULL;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next) {
        const cJSON *x = required_const(c, a, p->string), *y = required_const(c, b, p->string);
        if (x && y && !cJSON_Compare(x, y, true)) return true;
    }
    return false;
}

/* ---- $ref ---- */

/* The node a local reference ("#", "#/a/b", with ~0 ~1 and %xx escapes)
 * points to, or NULL. */
static const cJSON *resolve(conv *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const cJSON *n = c->doc;
    const char *p = ref + 1;
    if (*p && *p != '/') return NULL;
    while (*p) {
        p++; /* '/' */
        char tok[256];
        size_t k = 0;
        while (*p && *p != '/' && k < sizeof tok - 1) {
            if (p[0] == '~' && p[1] == '0')
                tok[k++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1')
                tok[k++] = '/', p += 2;
            else if (p[0] == '%' && p[1] && p[2]) {
                char hex[3] = {p[1], p[2], 0};
                tok[k++] = (char)strtol(hex, NULL, 16);
                p += 3;
            } else
                tok[k++] = *p++;
        }
        tok[k] = '\0';
        if (cJSON_IsArray(n)) {
            char *e;
            long i = strtol(tok, &e, 10);
            if (*e || e == tok || i < 0) return NULL;
            n = cJSON_GetArrayItem(n, (int)i);
        } else if (cJSON_IsObject(n)) {
            n = cJSON_GetObjectItemCaseSensitive(n, tok);
        } else {
            return NULL;
        }
        if (!n) return NULL;
    }
    return n;
}

/* ---- visiting schemas ---- */

static char *visit(conv *c, const cJSON *s, const char *ptr, const char *hint);

/* ptr + "/" + key, with ~ and / escaped as JSON pointers do. */
static char *child_ptr(const char *ptr, const char *key) {
    grok_strbuf b = {0};
    grok_strbuf_adds(&b, ptr);
    grok_strbuf_adds(&b, "/");
    for (const char *p = key; *p; p++) {
        if (*p == '~')
            grok_strbuf_adds(&b, "~0");
        else if (*p == '/')
            grok_strbuf_adds(&b, "~1");
        else
            grok_strbuf_add(&b, p, 1);
    }
    return grok_strbuf_take(&b, NULL);
}

static char *child_hint(const char *hint, const char *part) {
    grok_strbuf b = {0};
    if (!strcmp(hint, "root"))
        grok_strbuf_adds(&b, part);
    else
        grok_strbuf_addf(&b, "%s-%s", hint, part);
    return grok_strbuf_take(&b, NULL);
}

static const char *const ANNOTATIONS[] = {"title",           "description",
                                          "default",         "examples",
                                          "$schema",         "$id",
                                          "$comment",        "deprecated",
                                          "readOnly",        "writeOnly",
                                          "$defs",           "definitions",
                                          "$anchor",         "$dynamicAnchor",
                                          "$vocabulary",     "contentMediaType",
                                          "contentEncoding", "contentSchema",
                                          "strict",          "discriminator",
                                          "example",         "xml",
                                          "externalDocs"};
static const char *const SUPPORTED[] = {"type",
                                        "enum",
                                        "const",
                                        "properties",
                                        "required",
                                        "additionalProperties",
                                        "items",
                                        "prefixItems",
                                        "additionalItems",
                                        "minItems",
                                        "maxItems",
                                        "minLength",
                                        "maxLength",
                                        "format",
                                        "anyOf",
                                        "oneOf",
                                        "allOf",
                                        "$ref",
                                        "minimum",
                                        "maximum",
                                        "exclusiveMinimum",
                                        "exclusiveMaximum",
                                        "nullable"};
static const char *const REFUSED[] = {"pattern",
                                      "patternProperties",
                                      "propertyNames",
                                      "minProperties",
                                      "maxProperties",
                                      "dependentRequired",
                                      "dependentSchemas",
                                      "dependencies",
                                      "uniqueItems",
                                      "contains",
                                      "minContains",
                                      "maxContains",
                                      "not",
                                      "if",
                                      "then",
                                      "else",
                                      "multipleOf",
                                      "unevaluatedProperties",
                                      "unevaluatedItems",
                                      "$dynamicRef",
                                      "$recursiveRef"};

static bool in_list(const char *k, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i])) return true;
    return false;
}

#define N_OF(a) (sizeof a / sizeof a[0])

/* Refuses the validation keywords this converter cannot enforce. */
static bool check_keywords(conv *c, const cJSON *s, const char *ptr) {
    for (const cJSON *k = s->child; k; k = k->next) {
        if (in_list(k->string, REFUSED, N_OF(REFUSED))) {
            fail(c, ptr, "'%s' is not supported (a grammar cannot enforce it)", k->string);
            return false;
        }
    }
    return true;
}

/* Does s carry keywords beyond annotations and the ones in allow? */
static const char *other_keyword(const cJSON *s, const char *const *allow, size_t n) {
    for (const cJSON *k = s->child; k; k = k->next) {
        if (in_list(k->string, ANNOTATIONS, N_OF(ANNOTATIONS)) || in_list(k->string, allow, n)) continue;
        if (in_list(k->string, SUPPORTED, N_OF(SUPPORTED))) return k->string;
    }
    return NULL;
}

static int64_t num_field(conv *c, const cJSON *s, const char *name, const char *ptr, int64_t dflt,
                         bool *bad) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, name);
    if (!f) return dflt;
    double v = cJSON_IsNumber(f) ? f->valuedouble : -1;
    if (!cJSON_IsNumber(f) || v < 0 || v != floor(v) || v > 1e9) {
        fail(c, ptr, "'%s' must be a non-negative integer", name);
        *bad = true;
        return dflt;
    }
    return (int64_t)v;
}

/* "{m,n}" / "{m,}" / "*" / "?" for a repetition count range (max < 0: none). */
static void repeat_suffix(grok_strbuf *b, int64_t min, int64_t max) {
    if (min == 0 && max < 0)
        grok_strbuf_adds(b, "*");
    else if (min == 1 && max < 0)
        grok_strbuf_adds(b, "+");
    else if (min == 0 && max == 1)
        grok_strbuf_adds(b, "?");
    else if (max < 0)
        grok_strbuf_addf(b, "{%lld,}", (long long)min);
    else if (min == max)
        grok_strbuf_addf(b, "{%lld}", (long long)min);
    else
        grok_strbuf_addf(b, "{%lld,%lld}", (long long)min, (long long)max);
}

/* ---- integers in a range ---- */

/* Digit strings of equal length d from lo to hi (leading zeros part of
 * the string), as alternatives. */
static void digits_range(grok_strbuf *b, const char *lo, const char *hi, size_t d) {
    if (d == 0) return;
    if (lo[0] == hi[0]) {
        grok_strbuf_addf(b, "\"%c\"", lo[0]);
        if (d > 1) {
            grok_strbuf_adds(b, " ");
            bool paren = true;
            grok_strbuf_adds(b, "(");
            digits_range(b, lo + 1, hi + 1, d - 1);
            if (paren) grok_strbuf_adds(b, ")");
        }
        return;
    }
    bool lo_zero = true, hi_nine = true;
    for (size_t i = 1; i < d; i++) {
        if (lo[i] != '0') lo_zero = false;
        if (hi[i] != '9') hi_nine = false;
    }
    char first_lo = lo[0], first_hi = hi[0];
    bool any = false;
    if (!lo_zero) { /* lo[0] followed by lo[1..] up to 9..9 */
        char nines[32];
        memset(nines, '9', d - 1);
        grok_strbuf_addf(b, "\"%c\" (", lo[0]);
        digits_range(b, lo + 1, nines, d - 1);
        grok_strbuf_adds(b, ")");
        first_lo++;
        any = true;
    }
    char last_hi = hi_nine ? first_hi : (char)(first_hi - 1);
    if (first_lo <= last_hi) {
        if (any) grok_strbuf_adds(b, " | ");
        if (first_lo == last_hi)
            grok_strbuf_addf(b, "\"%c\"", first_lo);
        else
            grok_strbuf_addf(b, "[%c-%c]", first_lo, last_hi);
        if (d > 1) grok_strbuf_addf(b, " [0-9]{%zu}", d - 1);
        any = true;
    }
    if (!hi_nine) {
        char zeros[32];
        memset(zeros, '0', d - 1);
        if (any) grok_strbuf_adds(b, " | ");
        grok_strbuf_addf(b, "\"%c\" (", hi[0]);
        digits_range(b, zeros, hi + 1, d - 1);
        grok_strbuf_adds(b, ")");
    }
}

/* Non-negative integers from lo to hi (hi < 0: no bound), no leading zeros. */
static void nonneg_range(grok_strbuf *b, int64_t lo, int64_t hi) {
    char a[32], z[32];
    int dlo = snprintf(a, sizeof a, "%lld", (long long)lo);
    int dhi = hi >= 0 ? snprintf(z, sizeof z, "%lld", (long long)hi) : MAX_DIGITS;
    bool first = true;
    for (int d = dlo; d <= dhi; d++) {
        char from[32], to[32];
        if (d == dlo)
            memcpy(from, a, (size_t)d);
        else {
            memset(from, '0', (size_t)d);
            from[0] = '1';
        }
        if (hi >= 0 && d == dhi)
            memcpy(to, z, (size_t)d);
        else
            memset(to, '9', (size_t)d);
        if (!first) grok_strbuf_adds(b, " | ");
        first = false;
        grok_strbuf_adds(b, "(");
        digits_range(b, from, to, (size_t)d);
        grok_strbuf_adds(b, ")");
    }
}

/* The integer schema with bounds; false with an error. */
static char *integer_rule(conv *c, const cJSON *s, const char *ptr, const char *hint) {
    const double LIM = 999999999999999999.0; /* 18 digits */
    double lo = -INFINITY, hi = INFINITY;
    const cJSON *f;
    if ((f = cJSON_GetObjectItemCaseSensitive(s, "minimum"))) {
        if (!cJSON_IsNumber(f)) return fail(c, ptr, "'minimum' must be a number"), NULL;
        lo = ceil(f->valuedouble);
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(s, "maximum"))) {
        if (!cJSON_IsNumber(f)) return fail(c, ptr, "'maximum' must be a number"), NULL;
        hi = floor(f->valuedouble);
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum"))) {
        if (cJSON_IsNumber(f)) {
            double v = floor(f->valuedouble) + 1;
            if (v > lo) lo = v;
        } else if (cJSON_IsTrue(f) && isfinite(lo)) { /* draft 4: a flag on minimum */
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(s, "minimum");
            if (m && m->valuedouble == floor(m->valuedouble)) lo = m->valuedouble + 1;
        } else if (!cJSON_IsBool(f)) {
            return fail(c, ptr, "'exclusiveMinimum' must be a number"), NULL;
        }
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum"))) {
        if (cJSON_IsNumber(f)) {
            double v = ceil(f->valuedouble) - 1;
            if (v < hi) hi = v;
        } else if (cJSON_IsTrue(f) && isfinite(hi)) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(s, "maximum");
            if (m && m->valuedouble == floor(m->valuedouble)) hi = m->valuedouble - 1;
        } else if (!cJSON_IsBool(f)) {
            return fail(c, ptr, "'exclusiveMaximum' must be a number"), NULL;
        }
    }
    if (lo > hi) return fail(c, ptr, "no integer lies between the minimum and the maximum"), NULL;
    if (lo == -INFINITY && hi == INFINITY) return strdup(prim(c, "json-int"));
    if (lo < -LIM) lo = -LIM;
    if (hi > LIM) hi = INFINITY;
    if (!(lo <= hi)) return fail(c, ptr, "no integer with at most 18 digits lies in the range"), NULL;
    grok_strbuf b = {0};
    int64_t l = (int64_t)lo;
    if (hi == INFINITY) {
        if (l >= 0) {
            nonneg_range(&b, l, -1);
        } else {
            grok_strbuf_adds(&b, "\"-\" (");
            nonneg_range(&b, 1, -l);
            grok_strbuf_adds(&b, ") | ");
            nonneg_range(&b, 0, -1);
        }
    } else {
        int64_t h = (int64_t)hi;
        if (l >= 0) {
            nonneg_range(&b, l, h);
        } else if (h < 0) {
            grok_strbuf_adds(&b, "\"-\" (");
            nonneg_range(&b, -h, -l);
            grok_strbuf_adds(&b, ")");
        } else {
            grok_strbuf_adds(&b, "\"-\" (");
            nonneg_range(&b, 1, -l);
            grok_strbuf_adds(&b, ") | ");
            nonneg_range(&b, 0, h);
        }
    }
    return add_rule(c, hint, grok_strbuf_take(&b, NULL));
}

/* ---- the kinds of schema ---- */

static char *string_rule(conv *c, const cJSON *s, const char *ptr, const char *hint) {
    bool bad = false;
    int64_t min = num_field(c, s, "minLength", ptr, 0, &bad);
    int64_t max = num_field(c, s, "maxLength", ptr, -1, &bad);
    if (bad) return NULL;
    if (max >= 0 && max < min) return fail(c, ptr, "'maxLength' is below 'minLength'"), NULL;
    if (max > 100000) return fail(c, ptr, "'maxLength' above 100000 is not supported"), NULL;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
    if (fmt) {
        static const char *const FORMATS[][2] = {{"date", "fmt-date"},           {"time", "fmt-time"},
                                                 {"date-time", "fmt-date-time"}, {"uuid", "fmt-uuid"},
                                                 {"email", "fmt-email"},         {"ipv4", "fmt-ipv4"}};
        if (!cJSON_IsString(fmt)) return fail(c, ptr, "'format' must be a string"), NULL;
        for (size_t i = 0; i < N_OF(FORMATS); i++) {
            if (strcmp(fmt->valuestring, FORMATS[i][0])) continue;
            if (min > 0 || max >= 0)
                return fail(c, ptr, "'minLength' and 'maxLength' with a 'format' are not supported"), NULL;
            grok_strbuf b = {0};
            grok_strbuf_addf(&b, "\"\\\"\" %s \"\\\"\"", prim(c, FORMATS[i][1]));
            return add_rule(c, hint, grok_strbuf_take(&b, NULL));
        }
        return fail(c, ptr,
                    "format '%s' is not supported (supported: date, time, date-time, uuid, email, ipv4; "
                    "without 'format' any string is allowed)",
                    fmt->valuestring),
               NULL;
    }
    if (min == 0 && max < 0) return strdup(prim(c, "json-string"));
    grok_strbuf b = {0};
    grok_strbuf_addf(&b, "\"\\\"\" %s", prim(c, "json-char"));
    repeat_suffix(&b, min, max);
    grok_strbuf_adds(&b, " \"\\\"\"");
    return add_rule(c, hint, grok_strbuf_take(&b, NULL));
}

/* At a trie node (the names in nm sharing prefix[0..plen)), the key may
 * end here unless a name ends here, may go on with a character that
 * continues no name (then anything), or with one that does and the rest
 * of the trie below it. Names are ASCII (checked by the caller). */
static void write_node(grok_strbuf *out, const char **nm, size_t cnt, size_t d, const char *prefix,
                       size_t plen, const char *chr);

/* The rule for a JSON string key equal to none of the given names, with
 * no escapes (the keys of additional properties). */
static char *key_not_in(conv *c, const cJSON *props, const char *hint) {
    size_t n = 0;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next) n++;
    if (n == 0) return strdup(prim(c, "json-string"));
    /* a trie of the names, written as nested alternatives */
    const char **names = malloc(n * sizeof *names);
    if (!names) return oom(c), NULL;
    size_t k = 0;
    for (const cJSON *p = props->child; p; p = p->next) names[k++] = p->string;
    char *chars_rule = add_rule(c, "key-char", strdup("[^\"\\\\\\x00-\\x1F\\x7F]"));
    if (!chars_rule) {
        free(names);
        return NULL;
    }
    grok_strbuf b = {0};
    grok_strbuf_adds(&b, "\"\\\"\" ");
    write_node(&b, names, n, 0, "", 0, chars_rule);
    grok_strbuf_adds(&b, " \"\\\"\"");
    free(names);
    free(chars_rule);
    return add_rule(c, hint, grok_strbuf_take(&b, NULL));
}

static void write_node(grok_strbuf *out, const char **nm, size_t cnt, size_t d, const char *prefix,
                       size_t plen, const char *chr) {
    bool ends_here = false;
    unsigned char seen[256] = {0};
    for (size_t i = 0; i < cnt; i++) {
        if (strncmp(nm[i], prefix, plen)) continue;
        size_t l = strlen(nm[i]);
        if (l == plen)
            ends_here = true;
        else
            seen[(unsigned char)nm[i][plen]] = 1;
    }
    grok_strbuf_adds(out, "(");
    bool any = false;
    if (!ends_here) {
        grok_strbuf_adds(out, "\"\"");
        any = true;
    }
    /* a character no name continues with, then anything */
    if (any) grok_strbuf_adds(out, " | ");
    grok_strbuf_adds(out, "[^\"\\\\\\x00-\\x1F\\x7F");
    for (int ch = 0x20; ch < 256; ch++) {
        if (!seen[ch]) continue;
        if (ch < 0x80) {
            if (ch == '\\' || ch == ']' || ch == '-' || ch == '[' || ch == '"' || ch == '^')
                grok_strbuf_addf(out, "\\x%02X", ch);
            else
                grok_strbuf_addf(out, "%c", ch);
        }
    }
    grok_strbuf_addf(out, "] %s*", chr);
    for (int ch = 0x20; ch < 0x80; ch++) {
        if (!seen[ch]) continue;
        char np[512];
        if (plen + 1 >= sizeof np) continue;
        memcpy(np, prefix, plen);
        np[plen] = (char)ch;
        grok_strbuf_adds(out, " | ");
        char lit[8];
        grok_strbuf tmp = {0};
        lit[0] = (char)ch;
        gbnf_literal(&tmp, lit, 1);
        grok_strbuf_adds(out, tmp.a ? tmp.a : "\"\"");
        free(tmp.a);
        grok_strbuf_adds(out, " ");
        write_node(out, nm, cnt, d + 1, np, plen + 1, chr);
    }
    grok_strbuf_adds(out, ")");
}

static char *object_rule(conv *c, const cJSON *s, const char *ptr, const char *hint) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) return fail(c, ptr, "'properties' must be an object"), NULL;
    if (req && !cJSON_IsArray(req)) return fail(c, ptr, "'required' must be an array of names"), NULL;
    for (const cJSON *e = req ? req->child : NULL; e; e = e->next) {
        if (!cJSON_IsString(e)) return fail(c, ptr, "'required' must be an array of names"), NULL;
        if (!cJSON_GetObjectItemCaseSensitive(props, e->valuestring)) {
            if (cJSON_IsFalse(addl) || !addl)
                return fail(c, ptr, "'%s' is required but is not among the properties", e->valuestring), NULL;
            return fail(c, ptr, "required property '%s' outside 'properties' is not supported",
                        e->valuestring),
                   NULL;
        }
    }
    if (!props && !addl) return strdup(prim(c, "json-object"));
    /* additional properties: absent means none when properties are given */
    char *add_kv = NULL;
    if (addl && !cJSON_IsFalse(addl)) {
        char *ap = child_ptr(ptr, "additionalProperties");
        char *h = child_hint(hint, "additional");
        char *val =
            ap && h ? (cJSON_IsTrue(addl) ? strdup(prim(c, "json-value")) : visit(c, addl, ap, h)) : NULL;
        if (!val) {
            free(ap);
            free(h);
            if (!c->failed) oom(c);
            return NULL;
        }
        if (props)
            for (const cJSON *p = props->child; p; p = p->next)
                for (const unsigned char *q = (const unsigned char *)p->string; *q; q++)
                    if (*q >= 0x80) {
                        free(ap);
                        free(h);
                        free(val);
                        return fail(c, ptr,
                                    "'additionalProperties' beside a property with a non-ASCII name is not "
                                    "supported"),
                               NULL;
                    }
        char *hk = child_hint(hint, "additional-key");
        char *key = hk ? key_not_in(c, props, hk) : NULL;
        grok_strbuf b = {0};
        grok_strbuf_addf(&b, "%s ws \":\" ws %s ws", key ? key : "", val);
        prim(c, "ws");
        char *hkv = child_hint(hint, "additional-kv");
        add_kv = key && hkv ? add_rule(c, hkv, grok_strbuf_take(&b, NULL)) : (free(b.a), NULL);
        free(key);
        free(hk);
        free(hkv);
        free(val);
        free(ap);
        free(h);
        if (!add_kv) {
            if (!c->failed) oom(c);
            return NULL;
        }
    }
    /* the properties' key-value rules, in order */
    size_t n = 0;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next) n++;
    char **kv = calloc(n ? n : 1, sizeof *kv);
    bool *required = calloc(n ? n : 1, sizeof *required);
    if (!kv || !required) {
        free(kv);
        free(required);
        free(add_kv);
        return oom(c), NULL;
    }
    size_t i = 0;
    bool any_optional = false;
    prim(c, "ws");
    for (const cJSON *p = props ? props->child : NULL; p && !c->failed; p = p->next, i++) {
        for (const cJSON *e = req ? req->child : NULL; e; e = e->next)
            if (!strcmp(e->valuestring, p->string)) required[i] = true;
        if (cJSON_IsFalse(p)) { /* a property that may not appear */
            if (required[i]) fail(c, ptr, "property '%s' is required but its schema is false", p->string);
            continue;
        }
        if (!required[i]) any_optional = true;
        char *pp0 = child_ptr(ptr, "properties");
        char *pp = pp0 ? child_ptr(pp0, p->string) : NULL;
        char *h = child_hint(hint, p->string);
        char *val = pp && h ? visit(c, p, pp, h) : NULL;
        free(pp0);
        free(pp);
        if (!val) {
            free(h);
            if (!c->failed) oom(c);
            break;
        }
        grok_strbuf b = {0}, key = {0};
        json_string(&key, p->string);
        gbnf_literal(&b, key.a ? key.a : "", key.n);
        free(key.a);
        grok_strbuf_addf(&b, " ws \":\" ws %s ws", val);
        char *hkv = child_hint(h, "kv");
        kv[i] = hkv ? add_rule(c, hkv, grok_strbuf_take(&b, NULL)) : (free(b.a), NULL);
        free(hkv);
        free(h);
        free(val);
        if (!kv[i] && !c->failed) oom(c);
    }
    char *out = NULL;
    if (!c->failed) {
        grok_strbuf b = {0};
        if (!any_optional && !add_kv) {
            /* every property required: a plain sequence */
            grok_strbuf_adds(&b, "\"{\" ws");
            bool first = true;
            for (size_t j = 0; j < n; j++) {
                if (!kv[j]) continue;
                grok_strbuf_addf(&b, first ? " %s" : " \",\" ws %s", kv[j]);
                first = false;
            }
            grok_strbuf_adds(&b, " \"}\"");
            out = add_rule(c, hint, grok_strbuf_take(&b, NULL));
        } else {
            /* a_j: nothing written yet, at property j; b_j: something written
             * (the next property needs a comma) */
            char **ra = calloc(n + 1, sizeof *ra), **rb = calloc(n + 1, sizeof *rb);
            if (!ra || !rb) {
                oom(c);
            } else {
                grok_strbuf ea = {0}, eb = {0};
                if (add_kv) {
                    grok_strbuf_addf(&ea, "( %s ( \",\" ws %s )* )?", add_kv, add_kv);
                    grok_strbuf_addf(&eb, "( \",\" ws %s )*", add_kv);
                } else {
                    grok_strbuf_adds(&ea, "\"\"");
                    grok_strbuf_adds(&eb, "\"\"");
                }
                char *ha = child_hint(hint, "end-a"), *hb = child_hint(hint, "end-b");
                ra[n] = ha ? add_rule(c, ha, grok_strbuf_take(&ea, NULL)) : (free(ea.a), NULL);
                rb[n] = hb ? add_rule(c, hb, grok_strbuf_take(&eb, NULL)) : (free(eb.a), NULL);
                free(ha);
                free(hb);
                for (size_t j = n; j-- > 0 && !c->failed;) {
                    if (!kv[j]) { /* a property with schema false */
                        ra[j] = ra[j + 1] ? strdup(ra[j + 1]) : NULL;
                        rb[j] = rb[j + 1] ? strdup(rb[j + 1]) : NULL;
                        continue;
                    }
                    grok_strbuf x = {0}, y = {0};
                    grok_strbuf_addf(&x, "%s %s", kv[j], rb[j + 1]);
                    grok_strbuf_addf(&y, "\",\" ws %s %s", kv[j], rb[j + 1]);
                    if (!required[j]) {
                        grok_strbuf_addf(&x, " | %s", ra[j + 1]);
                        grok_strbuf_addf(&y, " | %s", rb[j + 1]);
                    }
                    char tag[32];
                    snprintf(tag, sizeof tag, "a%zu", j);
                    char *h1 = child_hint(hint, tag);
                    snprintf(tag, sizeof tag, "b%zu", j);
                    char *h2 = child_hint(hint, tag);
                    ra[j] = h1 ? add_rule(c, h1, grok_strbuf_take(&x, NULL)) : (free(x.a), NULL);
                    rb[j] = h2 ? add_rule(c, h2, grok_strbuf_take(&y, NULL)) : (free(y.a), NULL);
                    free(h1);
                    free(h2);
                }
                if (!c->failed && ra[0]) {
                    grok_strbuf o = {0};
                    grok_strbuf_addf(&o, "\"{\" ws %s \"}\"", ra[0]);
                    out = add_rule(c, hint, grok_strbuf_take(&o, NULL));
                }
            }
            for (size_t j = 0; ra && rb && j <= n; j++) {
                free(ra[j]);
                free(rb[j]);
            }
            free(ra);
            free(rb);
        }
    }
    for (size_t j = 0; j < n; j++) free(kv[j]);
    free(kv);
    free(required);
    free(add_kv);
    return c->failed ? (free(out), NULL) : out;
}

static char *array_rule(conv *c, const cJSON *s, const char *ptr, const char *hint) {
    bool bad = false;
    int64_t min = num_field(c, s, "minItems", ptr, 0, &bad);
    int64_t max = num_field(c, s, "maxItems", ptr, -1, &bad);
    if (bad) return NULL;
    if (max >= 0 && max < min) return fail(c, ptr, "'maxItems' is below 'minItems'"), NULL;
    if (min > 10000 || max > 10000) return fail(c, ptr, "item counts above 10000 are not supported"), NULL;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefixItems");
    const char *prefix_kw = "prefixItems", *rest_kw = "items";
    const cJSON *rest = items;
    if (cJSON_IsArray(items)) { /* drafts 4-7: items as a list, then additionalItems */
        prefix = items;
        prefix_kw = "items";
        rest = cJSON_GetObjectItemCaseSensitive(s, "additionalItems");
        rest_kw = "additionalItems";
    }
    if (prefix && !cJSON_IsArray(prefix))
        return fail(c, ptr, "'%s' must be an array of schemas", prefix_kw), NULL;
    size_t k = prefix ? (size_t)cJSON_GetArraySize(prefix) : 0;
    /* the rest's item rule, or NULL when no more items may follow */
    char *item = NULL;
    bool rest_ok = !(rest && cJSON_IsFalse(rest));
    if (rest_ok) {
        char *ip = child_ptr(ptr, rest_kw), *h = child_hint(hint, "item");
        item = ip && h ? (rest && !cJSON_IsTrue(rest) ? visit(c, rest, ip, h) : strdup(prim(c, "json-value")))
                       : NULL;
        free(ip);
        free(h);
        if (!item) {
            if (!c->failed) oom(c);
            return NULL;
        }
    }
    if (!rest_ok && (int64_t)k < min)
        return fail(c, ptr, "'minItems' needs more items than the array may hold"), NULL;
    prim(c, "ws");
    grok_strbuf b = {0};
    if (k == 0) {
        grok_strbuf_adds(&b, "\"[\" ws");
        if (max != 0 && item) {
            if (min == 0) {
                grok_strbuf_addf(&b, " ( %s ws ( \",\" ws %s ws )", item, item);
                repeat_suffix(&b, 0, max < 0 ? -1 : max - 1);
                grok_strbuf_adds(&b, " )?");
            } else {
                grok_strbuf_addf(&b, " %s ws ( \",\" ws %s ws )", item, item);
                repeat_suffix(&b, min - 1, max < 0 ? -1 : max - 1);
            }
        }
        grok_strbuf_adds(&b, " \"]\"");
    } else {
        /* the prefix items one by one (each optional once minItems is met), then the rest */
        char **p = calloc(k, sizeof *p);
        if (!p) {
            free(item);
            return oom(c), NULL;
        }
        size_t i = 0;
        for (const cJSON *e = prefix->child; e && !c->failed; e = e->next, i++) {
            char *pp0 = child_ptr(ptr, prefix_kw), idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            char *pp = pp0 ? child_ptr(pp0, idx) : NULL;
            char *h = child_hint(hint, idx);
            p[i] = pp && h ? visit(c, e, pp, h) : NULL;
            if (!p[i] && !c->failed) oom(c);
            free(pp0);
            free(pp);
            free(h);
        }
        size_t upto = max >= 0 && (size_t)max < k ? (size_t)max : k;
        grok_strbuf_adds(&b, "\"[\" ws");
        int open = 0;
        for (i = 0; i < upto && !c->failed; i++) {
            bool optional = (int64_t)i >= min;
            if (optional) {
                grok_strbuf_adds(&b, " (");
                open++;
            }
            grok_strbuf_addf(&b, i ? " \",\" ws %s ws" : " %s ws", p[i]);
        }
        if (!c->failed && item && (max < 0 || (size_t)max > k)) {
            int64_t rmin = min > (int64_t)k ? min - (int64_t)k : 0;
            int64_t rmax = max < 0 ? -1 : max - (int64_t)k;
            grok_strbuf_addf(&b, " ( \",\" ws %s ws )", item);
            repeat_suffix(&b, rmin, rmax);
        }
        for (; open > 0; open--) grok_strbuf_adds(&b, " )?");
        grok_strbuf_adds(&b, " \"]\"");
        for (i = 0; i < k; i++) free(p[i]);
        free(p);
    }
    free(item);
    if (c->failed) {
        free(b.a);
        return NULL;
    }
    return add_rule(c, hint, grok_strbuf_take(&b, NULL));
}

/* enum / const: the values' exact JSON texts, those of the allowed types. */
static char *literal_rule(conv *c, const cJSON *s, const char *ptr, const char *hint, int types) {
    const cJSON *cst = cJSON_GetObjectItemCaseSensitive(s, "const");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (en && !cJSON_IsArray(en)) return fail(c, ptr, "'enum' must be an array"), NULL;
    static const char *const ALLOW[] = {"type", "enum", "const", "nullable"};
    const char *other = other_keyword(s, ALLOW, N_OF(ALLOW));
    if (other) return fail(c, ptr, "'%s' beside 'enum' or 'const' is not supported", other), NULL;
    grok_strbuf b = {0};
    int n = 0;
    for (const cJSON *e = cst ? cst : en->child; e; e = cst ? NULL : e->next) {
        if (!(value_type(e) & types)) continue;
        if (cJSON_IsNumber(e) && (types & T_NUMBER) && !(types & T_STRING)) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
            bool integer_only = cJSON_IsString(t) && !strcmp(t->valuestring, "integer");
            if (integer_only && e->valuedouble != floor(e->valuedouble)) continue;
        }
        grok_strbuf v = {0};
        if (!json_text(c, &v, e, ptr)) {
            free(v.a);
            free(b.a);
            return NULL;
        }
        if (n++) grok_strbuf_adds(&b, " | ");
        gbnf_literal(&b, v.a ? v.a : "", v.n);
        free(v.a);
    }
    if (!n) {
        free(b.a);
        return fail(c, ptr, "no value of '%s' has an allowed type", cst ? "const" : "enum"), NULL;
    }
    return add_rule(c, hint, grok_strbuf_take(&b, NULL));
}

static char *alternatives(conv *c, const cJSON *list, const char *kw, const char *ptr, const char *hint) {
    if (!cJSON_IsArray(list) || !list->child) return fail(c, ptr, "'%s' must be a non-empty array", kw), NULL;
    char *lp = child_ptr(ptr, kw);
    if (!lp) return oom(c), NULL;
    if (!strcmp(kw, "oneOf")) {
        int i = 0;
        for (const cJSON *a = list->child; a; a = a->next, i++) {
            int j = i + 1;
            for (const cJSON *b = a->next; b; b = b->next, j++)
                if (!disjoint(c, a, b)) {
                    fail(
                        c, lp,
                        "branches %d and %d may both match one value, which 'oneOf' forbids; use 'anyOf', or "
                        "give the branches different types or a required property with different 'const' "
                        "values",
                        i, j);
                    free(lp);
                    return NULL;
                }
        }
    }
    grok_strbuf b = {0};
    int i = 0;
    for (const cJSON *a = list->child; a && !c->failed; a = a->next, i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%d", i);
        char *ap = child_ptr(lp, idx);
        char *h = child_hint(hint, idx);
        char *r = ap && h ? visit(c, a, ap, h) : NULL;
        if (r)
            grok_strbuf_addf(&b, i ? " | %s" : "%s", r);
        else if (!c->failed)
            oom(c);
        free(r);
        free(ap);
        free(h);
    }
    free(lp);
    if (c->failed) {
        free(b.a);
        return NULL;
    }
    return add_rule(c, hint, grok_strbuf_take(&b, NULL));
}

/* One type's rule for schema s. */
static char *typed(conv *c, const cJSON *s, const char *ptr, const char *hint, int t) {
    switch (t) {
    case T_NULL: return strdup(prim(c, "json-null"));
    case T_BOOL: return strdup(prim(c, "json-bool"));
    case T_STRING: return string_rule(c, s, ptr, hint);
    case T_OBJECT: return object_rule(c, s, ptr, hint);
    case T_ARRAY: return array_rule(c, s, ptr, hint);
    default: return NULL;
    }
}

static char *visit(conv *c, const cJSON *s, const char *ptr, const char *hint) {
    if (c->failed) return NULL;
    if (++c->depth > MAX_DEPTH) {
        fail(c, ptr, "the schema nests deeper than %d levels", MAX_DEPTH);
        c->depth--;
        return NULL;
    }
    char *out = NULL;
    if (cJSON_IsTrue(s)) {
        out = strdup(prim(c, "json-value"));
        goto done;
    }
    if (cJSON_IsFalse(s)) {
        fail(c, ptr, "the schema is false: no value matches it");
        goto done;
    }
    if (!cJSON_IsObject(s)) {
        fail(c, ptr, "a schema must be an object or a boolean");
        goto done;
    }
    if (!check_keywords(c, s, ptr)) goto done;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    if (ref) {
        static const char *const ALLOW[] = {"$ref"};
        const char *other = other_keyword(s, ALLOW, 1);
        if (!cJSON_IsString(ref)) {
            fail(c, ptr, "'$ref' must be a string");
        } else if (other) {
            fail(c, ptr, "'%s' beside '$ref' is not supported", other);
        } else if (ref->valuestring[0] != '#') {
            fail(c, ptr, "'$ref' to '%s': only references inside the document (#...) are supported",
                 ref->valuestring);
        } else {
            for (size_t i = 0; i < c->n_refs; i++)
                if (!strcmp(c->refs[i].ptr, ref->valuestring)) {
                    out = strdup(c->refs[i].name);
                    goto done;
                }
            const cJSON *target = resolve(c, ref->valuestring);
            if (!target) {
                fail(c, ptr, "'$ref' '%s' points to nothing in the document", ref->valuestring);
                goto done;
            }
            const char *slash = strrchr(ref->valuestring, '/');
            char *name = reserve_rule(c, slash ? slash + 1 : "ref");
            if (!name) goto done;
            if (c->n_refs == c->cap_refs) {
                size_t cap = c->cap_refs ? c->cap_refs * 2 : 8;
                ref_rule *r = realloc(c->refs, cap * sizeof *r);
                if (!r) {
                    free(name);
                    oom(c);
                    goto done;
                }
                c->refs = r;
                c->cap_refs = cap;
            }
            c->refs[c->n_refs].ptr = strdup(ref->valuestring);
            c->refs[c->n_refs].name = strdup(name);
            c->n_refs++;
            const char *tp = ref->valuestring + 1;
            char *body = visit(c, target, tp, name);
            if (body) set_body(c, name, body);
            if (c->failed) {
                free(name);
                goto done;
            }
            out = name;
        }
        goto done;
    }
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(s, "allOf");
    if (all) {
        static const char *const ALLOW[] = {"allOf"};
        const char *other = other_keyword(s, ALLOW, 1);
        if (!cJSON_IsArray(all) || cJSON_GetArraySize(all) != 1 || other) {
            fail(c, ptr, "'allOf' is supported only with one schema and no other keyword beside it");
            goto done;
        }
        char *ap = child_ptr(ptr, "allOf"), *ap0 = ap ? child_ptr(ap, "0") : NULL;
        out = ap0 ? visit(c, all->child, ap0, hint) : (oom(c), NULL);
        free(ap);
        free(ap0);
        goto done;
    }
    /* the JSON types this schema allows */
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    int types = 0;
    bool integer = false, number = false;
    if (type) {
        const cJSON *list = cJSON_IsArray(type) ? type->child : type;
        for (const cJSON *e = list; e; e = cJSON_IsArray(type) ? e->next : NULL) {
            int bit = cJSON_IsString(e) ? type_bit(e->valuestring) : 0;
            if (!bit) {
                fail(c, ptr,
                     "'type' must be null, boolean, object, array, number, integer or string (or a list of "
                     "them)");
                goto done;
            }
            if (!strcmp(e->valuestring, "integer")) integer = true;
            if (!strcmp(e->valuestring, "number")) number = true;
            types |= bit;
        }
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "nullable")) && types) types |= T_NULL;
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(s, "oneOf");
    if (any || one) {
        static const char *const ALLOW[] = {"anyOf", "oneOf"};
        const char *other = other_keyword(s, ALLOW, 2);
        if (any && one) {
            fail(c, ptr, "'anyOf' together with 'oneOf' is not supported");
        } else if (other) {
            fail(c, ptr, "'%s' beside '%s' is not supported (move it into each branch)", other,
                 any ? "anyOf" : "oneOf");
        } else {
            out = alternatives(c, any ? any : one, any ? "anyOf" : "oneOf", ptr, hint);
        }
        goto done;
    }
    if (cJSON_GetObjectItemCaseSensitive(s, "enum") || cJSON_GetObjectItemCaseSensitive(s, "const")) {
        out = literal_rule(c, s, ptr, hint, types ? types : T_ALL);
        goto done;
    }
    if (!types) { /* no type: what the keywords imply, else any value */
        if (cJSON_GetObjectItemCaseSensitive(s, "properties") ||
            cJSON_GetObjectItemCaseSensitive(s, "additionalProperties"))
            types = T_OBJECT;
        else if (cJSON_GetObjectItemCaseSensitive(s, "items") ||
                 cJSON_GetObjectItemCaseSensitive(s, "prefixItems"))
            types = T_ARRAY;
        else if (cJSON_GetObjectItemCaseSensitive(s, "minLength") ||
                 cJSON_GetObjectItemCaseSensitive(s, "maxLength") ||
                 cJSON_GetObjectItemCaseSensitive(s, "format"))
            types = T_STRING;
        else if (cJSON_GetObjectItemCaseSensitive(s, "minimum") ||
                 cJSON_GetObjectItemCaseSensitive(s, "maximum") ||
                 cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum") ||
                 cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum")) {
            fail(c, ptr, "'minimum'/'maximum' without \"type\": \"integer\" are not supported");
            goto done;
        } else {
            out = strdup(prim(c, "json-value"));
            goto done;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "nullable"))) types |= T_NULL;
    }
    grok_strbuf b = {0};
    int n = 0;
    for (int t = 1; t <= T_STRING && !c->failed; t <<= 1) {
        if (!(types & t)) continue;
        char *r;
        if (t == T_NUMBER) {
            bool bounded = cJSON_GetObjectItemCaseSensitive(s, "minimum") ||
                           cJSON_GetObjectItemCaseSensitive(s, "maximum") ||
                           cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum") ||
                           cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum");
            if (number && bounded) {
                fail(c, ptr,
                     "'minimum'/'maximum' are supported on integers only, not on \"type\": \"number\"");
                break;
            }
            char *h = child_hint(hint, "int");
            r = number    ? strdup(prim(c, "json-number"))
                : integer ? (h ? integer_rule(c, s, ptr, types == T_NUMBER ? hint : h) : NULL)
                          : NULL;
            free(h);
        } else {
            char *h = child_hint(hint, t == T_NULL     ? "null"
                                       : t == T_BOOL   ? "bool"
                                       : t == T_STRING ? "string"
                                       : t == T_OBJECT ? "object"
                                                       : "array");
            r = h ? typed(c, s, ptr, (types & (types - 1)) ? h : hint, t) : NULL;
            free(h);
        }
        if (!r) {
            if (!c->failed) oom(c);
            break;
        }
        grok_strbuf_addf(&b, n++ ? " | %s" : "%s", r);
        free(r);
    }
    if (c->failed) {
        free(b.a);
        goto done;
    }
    if (n == 1) {
        out = grok_strbuf_take(&b, NULL);
    } else {
        out = add_rule(c, hint, grok_strbuf_take(&b, NULL));
    }
done:
    c->depth--;
    return c->failed ? (free(out), NULL) : out;
}

char *grok_json_schema_to_gbnf_rules(const char *schema, size_t len, const char *start, char *err,
                                     size_t err_size) {
    char dummy[8];
    if (!err || !err_size) err = dummy, err_size = sizeof dummy;
    err[0] = '\0';
    if (!schema) len = 0;
    int64_t bad = grok_utf8_invalid_at(schema ? schema : "", len);
    if (bad >= 0) {
        snprintf(err, err_size, "invalid UTF-8 at byte %lld of the schema", (long long)bad);
        return NULL;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(schema ? schema : "", len, &end, false);
    if (!doc) {
        snprintf(err, err_size, "the schema is not valid JSON (at byte %lld)",
                 (long long)(end ? end - schema : 0));
        return NULL;
    }
    for (const char *p = end; p && p < schema + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            snprintf(err, err_size, "the schema is not valid JSON (trailing data at byte %lld)",
                     (long long)(p - schema));
            cJSON_Delete(doc);
            return NULL;
        }
    bool named = start && strcmp(start, "root");
    conv c = {.doc = doc, .prefix = named ? start : NULL, .err = err, .err_size = err_size};
    char *root = NULL;
    if (add_rule_slot(&c) && (root = strdup(named ? start : "root")) && (c.names[0] = strdup(root))) {
        c.bodies[0] = NULL;
        c.n_rules = 1;
    } else {
        oom(&c);
    }
    char *body = root && !c.failed ? visit(&c, doc, "", "root") : NULL;
    char *out = NULL;
    if (body && !c.failed) {
        set_body(&c, root, body);
        body = NULL;
        grok_strbuf b = {0};
        for (size_t i = 0; i < c.n_rules; i++)
            grok_strbuf_addf(&b, "%s ::= %s\n", c.names[i], c.bodies[i] ? c.bodies[i] : "\"\"");
        out = grok_strbuf_take(&b, NULL);
        if (!out) snprintf(err, err_size, "out of memory");
    }
    free(body);
    free(root);
    for (size_t i = 0; i < c.n_rules; i++) {
        free(c.names[i]);
        free(c.bodies[i]);
    }
    free(c.names);
    free(c.bodies);
    for (size_t i = 0; i < c.n_refs; i++) {
        free(c.refs[i].ptr);
        free(c.refs[i].name);
    }
    free(c.refs);
    cJSON_Delete(doc);
    return out;
}

char *grok_json_schema_to_gbnf(const char *schema, size_t len, char *err, size_t err_size) {
    return grok_json_schema_to_gbnf_rules(schema, len, "root", err, err_size);
}
