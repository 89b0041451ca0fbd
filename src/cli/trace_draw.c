/*
 * trace_draw.c - `grok trace`'s pictures, drawn with cairo (Debian's
 * libcairo2-dev) into an SVG or a PNG surface from one drawing function:
 *
 *   - a heatmap, one row per token (its text on the left) and one column
 *     per layer; each cell is split left to right into the token's K
 *     chosen experts, each part as wide as its gate's share and coloured
 *     by the expert (legend on the right);
 *   - per layer, bars of each expert's share of the choices against the
 *     even share 1/E (dashed), with max/mean and the CV;
 *   - the hit rate of an expert cache of k experts per layer (mean over
 *     layers) under LRU and the optimal policy, against k/E, what
 *     routing that ignores the text would give.
 *
 * Without cairo (GROK_HAVE_CAIRO undefined) the functions only say so.
 * Files are written under a temporary name and renamed when complete.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/trace.h"

#ifndef GROK_HAVE_CAIRO

bool grok_trace_can_draw(void) { return false; }
const char *grok_trace_draw_backend(void) { return "none"; }
int grok_trace_draw(const char *path, bool png, const grok_trace *t, const grok_trace_stats *s,
                    const char *title, int64_t max_rows, char *err, size_t err_size) {
    (void)path, (void)png, (void)t, (void)s, (void)title, (void)max_rows;
    snprintf(err, err_size,
             "this grok was built without cairo, which draws the pictures (apt-get install "
             "libcairo2-dev, then rebuild); the JSON (-o) and the table need nothing");
    return -1;
}

#else

#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>

bool grok_trace_can_draw(void) { return true; }
const char *grok_trace_draw_backend(void) {
    static char v[64];
    snprintf(v, sizeof v, "SVG and PNG with cairo %s", cairo_version_string());
    return v;
}

#define MARGIN 16.0
#define TITLE_H 30.0
#define LABEL_W 116.0
#define ROW_H 12.0
#define HEAD_H 18.0
#define LEGEND_W 100.0
#define BAR_W 170.0
#define BAR_H 96.0
#define CACHE_W 360.0
#define CACHE_H 200.0

/* Tableau's 10 colours, then a hue wheel for more experts. */
static void expert_rgb(int64_t e, int64_t E, double rgb[3]) {
    static const unsigned char pal[10][3] = {{78, 121, 167}, {242, 142, 43}, {225, 87, 89},   {118, 183, 178},
                                             {89, 161, 79},  {237, 201, 72}, {176, 122, 161}, {255, 157, 167},
                                             {156, 117, 95}, {186, 176, 172}};
    if (E <= 10) {
        for (int i = 0; i < 3; i++) rgb[i] = pal[e][i] / 255.0;
        return;
    }
    double h = 6.0 * (double)e / (double)E, x = 1 - fabs(fmod(h, 2) - 1), c = 0.75, m = 0.15;
    double r = 0, g = 0, b = 0;
    if (h < 1)
        r = c, g = c * x;
    else if (h < 2)
        r = c * x, g = c;
    else if (h < 3)
        g = c, b = c * x;
    else if (h < 4)
        g = c * x, b = c;
    else if (h < 5)
        r = c * x, b = c;
    else
        r = c, b = c * x;
    rgb[0] = r + m, rgb[1] = g + m, rgb[2] = b + m;
}

typedef struct {
    int64_t rows;
    double cw, width, height, heat_h, bars_y, bars_cols, cache_y;
} layout;

static layout plan(const grok_trace *t, int64_t max_rows) {
    layout y;
    y.rows = t->n_tok < max_rows ? t->n_tok : max_rows;
    y.cw = 480.0 / (double)t->L;
    if (y.cw > 48) y.cw = 48;
    if (y.cw < 6) y.cw = 6;
    const double heat_w = LABEL_W + y.cw * (double)t->L + 12 + LEGEND_W;
    double w = heat_w;
    if (w < 4 * BAR_W) w = 4 * BAR_W;
    if (w < CACHE_W + 40) w = CACHE_W + 40;
    y.bars_cols = floor(w / BAR_W);
    y.width = w + 2 * MARGIN;
    y.heat_h = HEAD_H + ROW_H * (double)y.rows + (y.rows < t->n_tok ? 16 : 0);
    y.bars_y = MARGIN + TITLE_H + y.heat_h + 24;
    const double bar_rows = ceil((double)t->L / y.bars_cols);
    y.cache_y = y.bars_y + 22 + bar_rows * (BAR_H + 34) + 10;
    y.height = y.cache_y + 22 + CACHE_H + 40 + MARGIN;
    return y;
}

/* A label that fits: control characters shown, at most 14 characters
 * (cut on a UTF-8 boundary). */
static void short_label(const char *s, char *out, size_t cap) {
    size_t k = 0, chars = 0;
    for (const unsigned char *u = (const unsigned char *)s; *u && k + 8 < cap; u++) {
        if ((*u & 0xC0) != 0x80 && ++chars > 14) {
            memcpy(out + k, "\xE2\x80\xA6", 3), k += 3; /* ellipsis */
            break;
        }
        if (*u == '\n')
            memcpy(out + k, "\xE2\x86\xB5", 3), k += 3; /* return arrow */
        else if (*u == '\t')
            memcpy(out + k, "\xE2\x86\x92", 3), k += 3;
        else if (*u < 0x20)
            out[k++] = '?';
        else
            out[k++] = (char)*u;
    }
    out[k] = '\0';
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double align) {
    cairo_text_extents_t ex;
    cairo_text_extents(cr, s, &ex);
    cairo_move_to(cr, x - align * ex.x_advance, y);
    cairo_show_text(cr, s);
}

/* The title line over the white page. */
static void draw_title(cairo_t *cr, const grok_trace *t, const char *title) {
    const int64_t L = t->L, E = t->E, K = t->K;
    char buf[256];
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 15);
    snprintf(buf, sizeof buf, "%s, %" PRId64 " layers, top-%" PRId64 " of %" PRId64 " experts", title, L, K,
             E);
    text_at(cr, MARGIN, MARGIN + 16, buf, 0);
}

/* The heatmap: a row per token (its text on the left), a column per
 * layer, each cell split among its chosen experts by gate. */
static void draw_heatmap(cairo_t *cr, const layout *y, const grok_trace *t) {
    const int64_t L = t->L, E = t->E, K = t->K;
    const double x0 = MARGIN + LABEL_W, y0 = MARGIN + TITLE_H;
    char buf[256];
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 10);
    const int64_t every = y->cw >= 20 ? 1 : y->cw >= 10 ? 2 : 8;
    for (int64_t l = 0; l < L; l += every) {
        snprintf(buf, sizeof buf, "%s%" PRId64, y->cw >= 20 ? "L" : "", l);
        text_at(cr, x0 + ((double)l + 0.5) * y->cw, y0 + 11, buf, 0.5);
    }
    cairo_select_font_face(cr, "monospace", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int64_t i = 0; i < y->rows; i++) {
        const double ry = y0 + HEAD_H + (double)i * ROW_H;
        char lab[64];
        short_label(t->text[i] ? t->text[i] : "", lab, sizeof lab);
        snprintf(buf, sizeof buf, "\"%s\"", lab);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        text_at(cr, x0 - 6, ry + ROW_H - 2.5, buf, 1);
        for (int64_t l = 0; l < L; l++) {
            const size_t cell = (size_t)i * (size_t)L + (size_t)l;
            const int32_t *sel = t->sel + cell * (size_t)K;
            const float *g = t->gates + cell * (size_t)K;
            double sum = 0, at = x0 + (double)l * y->cw;
            for (int64_t k = 0; k < K; k++) sum += g[k];
            for (int64_t k = 0; k < K; k++) {
                const double w = (sum > 0 ? g[k] / sum : 1.0 / (double)K) * (y->cw - 1);
                double rgb[3];
                expert_rgb(sel[k], E, rgb);
                cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
                cairo_rectangle(cr, at, ry, w, ROW_H - 1);
                cairo_fill(cr);
                at += w;
            }
        }
    }
    if (y->rows < t->n_tok) {
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_ITALIC, CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        snprintf(buf, sizeof buf, "(the first %" PRId64 " of %" PRId64 " tokens)", y->rows, t->n_tok);
        text_at(cr, x0, y0 + HEAD_H + (double)y->rows * ROW_H + 12, buf, 0);
    }
}

/* The experts' colours, right of the heatmap. */
static void draw_legend(cairo_t *cr, const layout *y, const grok_trace *t) {
    const int64_t L = t->L, E = t->E;
    const double x0 = MARGIN + LABEL_W, y0 = MARGIN + TITLE_H;
    char buf[256];
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    const double lx = x0 + (double)L * y->cw + 16;
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, lx, y0 + 11, "expert", 0);
    for (int64_t e = 0; e < E && e < 64; e++) {
        double rgb[3];
        expert_rgb(e, E, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, lx, y0 + HEAD_H + (double)e * 14, 12, 11);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        snprintf(buf, sizeof buf, "%" PRId64, e);
        text_at(cr, lx + 17, y0 + HEAD_H + (double)e * 14 + 9.5, buf, 0);
    }
}

/* The usage bars, one small chart per layer. */
static void draw_bars(cairo_t *cr, const layout *y, const grok_trace *t, const grok_trace_stats *s) {
    const int64_t L = t->L, E = t->E;
    char buf[256];
    cairo_set_font_size(cr, 12);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, MARGIN, y->bars_y + 4, "expert share of the choices, per layer (dashed: even share 1/E)", 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 10);
    double top = 0;
    for (int64_t l = 0; l < L; l++)
        for (int64_t e = 0; e < E; e++) top = s->layer[l].share[e] > top ? s->layer[l].share[e] : top;
    top = top < 2.0 / (double)E ? 2.0 / (double)E : top;
    for (int64_t l = 0; l < L; l++) {
        const grok_trace_layer *ly = &s->layer[l];
        const double bx = MARGIN + fmod((double)l, y->bars_cols) * BAR_W;
        const double by = y->bars_y + 22 + floor((double)l / y->bars_cols) * (BAR_H + 34);
        const double pw = BAR_W - 20, bw = pw / (double)E;
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        snprintf(buf, sizeof buf, "layer %" PRId64 ": max/mean %.2f, cv %.2f", l, ly->imbalance, ly->cv);
        text_at(cr, bx, by + 8, buf, 0);
        const double base = by + 14 + BAR_H;
        for (int64_t e = 0; e < E; e++) {
            double rgb[3], h = ly->share[e] / top * BAR_H;
            expert_rgb(e, E, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, bx + (double)e * bw + 1, base - h, bw - 2, h);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, bx, base + 0.5);
        cairo_line_to(cr, bx + pw, base + 0.5);
        cairo_stroke(cr);
        const double even = base - (1.0 / (double)E) / top * BAR_H;
        const double dash[] = {3, 3};
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, bx, even);
        cairo_line_to(cr, bx + pw, even);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
    }
}

/* The expert cache's hit rate against k, LRU and optimal beside k/E. */
static void draw_cache(cairo_t *cr, const layout *y, const grok_trace *t, const grok_trace_stats *s) {
    const int64_t E = t->E;
    char buf[256];
    const double cx = MARGIN + 40, cy = y->cache_y + 22, cw = CACHE_W - 40;
    cairo_set_font_size(cr, 12);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    snprintf(buf, sizeof buf,
             "expert cache hit rate, k experts per layer (mean of layers); previous token's reuse %.2f",
             s->all.reuse);
    text_at(cr, MARGIN, y->cache_y + 4, buf, 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 10);
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, cx + 0.5, cy + 0.5, cw, CACHE_H);
    cairo_stroke(cr);
    for (int i = 0; i <= 4; i++) {
        snprintf(buf, sizeof buf, "%.2f", i / 4.0);
        text_at(cr, cx - 4, cy + CACHE_H - CACHE_H * i / 4.0 + 3, buf, 1);
    }
    const double step = E > 1 ? cw / (double)(E - 1) : cw;
    for (int64_t k = 1; k <= E; k++) {
        snprintf(buf, sizeof buf, "%" PRId64, k);
        if (E <= 16 || k % 4 == 0 || k == 1)
            text_at(cr, cx + (double)(k - 1) * step, cy + CACHE_H + 13, buf, 0.5);
    }
    text_at(cr, cx + cw / 2, cy + CACHE_H + 27, "k (cached experts per layer)", 0.5);
    for (int series = 0; series < 3; series++) {
        const double dash[] = {4, 3};
        if (series == 0) cairo_set_source_rgb(cr, 0.55, 0.55, 0.55), cairo_set_dash(cr, dash, 2, 0);
        if (series == 1) cairo_set_source_rgb(cr, 0.31, 0.47, 0.65), cairo_set_dash(cr, NULL, 0, 0);
        if (series == 2) cairo_set_source_rgb(cr, 0.88, 0.34, 0.35);
        cairo_set_line_width(cr, 2);
        for (int64_t k = 1; k <= E; k++) {
            const double v = series == 0   ? (double)k / (double)E
                             : series == 1 ? s->all.lru[k]
                                           : s->all.opt[k];
            const double px = cx + (double)(k - 1) * step, py = cy + CACHE_H - v * CACHE_H;
            if (k == 1)
                cairo_move_to(cr, px, py);
            else
                cairo_line_to(cr, px, py);
        }
        cairo_stroke(cr);
        static const char *names[3] = {"k/E (routing blind to the text)", "LRU", "optimal (Belady)"};
        const double ly = cy + 14 + 14.0 * series;
        cairo_move_to(cr, cx + cw + 14, ly - 4);
        cairo_line_to(cr, cx + cw + 34, ly - 4);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, cx + cw + 40, ly, names[series], 0);
    }
}

static void draw(cairo_t *cr, const layout *y, const grok_trace *t, const grok_trace_stats *s,
                 const char *title) {
    draw_title(cr, t, title);
    draw_heatmap(cr, y, t);
    draw_legend(cr, y, t);
    draw_bars(cr, y, t, s);
    draw_cache(cr, y, t, s);
}

int grok_trace_draw(const char *path, bool png, const grok_trace *t, const grok_trace_stats *s,
                    const char *title, int64_t max_rows, char *err, size_t err_size) {
    const layout y = plan(t, max_rows);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_size, "path too long");
        return -1;
    }
    cairo_surface_t *sf =
        png ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)ceil(y.width), (int)ceil(y.height))
            : cairo_svg_surface_create(tmp, y.width, y.height);
    cairo_t *cr = cairo_create(sf);
    draw(cr, &y, t, s, title);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) {
        if (png) {
            st = cairo_surface_write_to_png(sf, tmp);
        } else {
            cairo_surface_finish(sf);
            st = cairo_surface_status(sf);
        }
    }
    cairo_surface_destroy(sf);
    /* cairo and fontconfig keep their font caches until exit; give them back
     * (LeakSanitizer counts them, and a picture is drawn rarely enough) */
    cairo_debug_reset_static_data();
    FcFini();
    if (st != CAIRO_STATUS_SUCCESS || rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write it: %s",
                 st != CAIRO_STATUS_SUCCESS ? cairo_status_to_string(st) : "rename failed");
        unlink(tmp);
        return -1;
    }
    return 0;
}

#endif
