#!/usr/bin/python3
"""gen_iq_tables.py - writes src/kernels/iq_tables.{h,c}, the codebooks of
ggml's i-quant weight types (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S,
IQ1_M), from the format's published definition: the GGML_TABLE blocks of
ggml's ggml/src/ggml-common.h (llama.cpp's repository; the tables there are
the format, as a CRC polynomial is part of a checksum's definition, and a
file written by llama-quantize means nothing without them).

usage: /usr/bin/python3 scripts/gen_iq_tables.py PATH/TO/ggml/src/ggml-common.h [OUT_DIR]

OUT_DIR defaults to src/kernels next to this script. Only the tables are
taken (as numbers); the decoding and dot-product code that uses them is
this project's own. What the script reads is checked before anything is
written:
  - each table has the size its GGML_TABLE_BEGIN line declares, and its
    entries are distinct (a grid is a set of points);
  - every grid value lies in its type's level set: IQ2 grids {8, 25, 43},
    IQ3_XXS {4, 12, ..., 52, 62}, IQ3_S {1, 3, ..., 15}, IQ1_S {-1, 0, 1};
  - the sign table, which the format defines by a rule (7 stored sign bits,
    the 8th making the count of minus signs even), equals that rule, and
    the bit mask table equals 1 << j; both are written from the rule;
  - IQ1S_DELTA and IQ1M_DELTA are 0.125 (the decoders hard-code 1/8).
Two derived tables follow from those by fixed rules, for the SIMD kernels:
grok_iq_sign_bytes (each sign byte as 8 multipliers +-1) and grok_iq1s_grid8
(the IQ1 grid times 8, to which the kernels add IQ1's +-1 offset).
The grids are emitted as byte arrays (element j of entry i is grid[i][j]),
so nothing depends on the host's byte order, with each table's CRC-32 in
the header; tests/ref/gguf_reader.py parses iq_tables.c for its NumPy
decoders, and test_iquants checks the CRCs and the rules again.
Debian's python3 only (no third-party modules).
"""
import hashlib
import os
import re
import subprocess
import sys
import zlib

# name in ggml-common.h -> (name here, entry bytes, element type, level set)
GRIDS = [
    ("iq2xxs_grid", "grok_iq2xxs_grid", 8, "uint8_t", {8, 25, 43}),
    ("iq2xs_grid", "grok_iq2xs_grid", 8, "uint8_t", {8, 25, 43}),
    ("iq2s_grid", "grok_iq2s_grid", 8, "uint8_t", {8, 25, 43}),
    ("iq3xxs_grid", "grok_iq3xxs_grid", 4, "uint8_t", {4, 12, 20, 28, 36, 44, 52, 62}),
    ("iq3s_grid", "grok_iq3s_grid", 4, "uint8_t", {1, 3, 5, 7, 9, 11, 13, 15}),
    ("iq1s_grid", "grok_iq1s_grid", 8, "int8_t", {-1, 0, 1}),
]
WHAT = {
    "grok_iq2xxs_grid": "IQ2_XXS: 256 points of 8 magnitudes (index: one byte)",
    "grok_iq2xs_grid": "IQ2_XS: 512 points of 8 magnitudes (index: 9 bits)",
    "grok_iq2s_grid": "IQ2_S: 1024 points of 8 magnitudes (index: 10 bits)",
    "grok_iq3xxs_grid": "IQ3_XXS: 256 points of 4 magnitudes (index: one byte)",
    "grok_iq3s_grid": "IQ3_S: 512 points of 4 magnitudes (index: 9 bits)",
    "grok_iq1s_grid": "IQ1_S and IQ1_M: 2048 points of 8 values in {-1, 0, 1} (index: 11 bits)",
}


def die(msg):
    sys.exit("gen_iq_tables.py: " + msg)


def parse_tables(src, path):
    """name -> (C type, declared size, list of ints) for every GGML_TABLE block."""
    defines = dict(re.findall(r"^#define\s+(\w+)\s+(\d+)\s*$", src, re.M))
    out = {}
    pat = re.compile(r"GGML_TABLE_BEGIN\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)(.*?)GGML_TABLE_END\(\)", re.S)
    for m in pat.finditer(src):
        ctype, name, size, body = m.groups()
        if name == "name":  # the macro's own definition
            continue
        if not size.isdigit():
            if size not in defines:
                die("%s: table %s: size %s is not a number or a #define" % (path, name, size))
            size = defines[size]
        body = re.sub(r"//[^\n]*|/\*.*?\*/", "", body, flags=re.S)
        toks = [t for t in re.split(r"[\s,]+", body) if t]
        try:
            vals = [int(t, 0) for t in toks]
        except ValueError as e:
            die("%s: table %s: %s" % (path, name, e))
        if name in out:
            die("%s: table %s defined twice" % (path, name))
        out[name] = (ctype, int(size), vals)
    return out


def define_float(src, name, path):
    m = re.search(r"^#define\s+%s\s+([0-9.]+)f?\s*$" % name, src, re.M)
    if not m:
        die("%s: no #define %s" % (path, name))
    return float(m.group(1))


def ksign(i):
    """The format's sign byte for 7 stored sign bits i: bit 7 makes the count even."""
    return i | ((bin(i).count("1") & 1) << 7)


def entry_bytes(v, nbytes, signed):
    bs = [(v >> (8 * k)) & 0xFF for k in range(nbytes)]  # ggml reads entries as little-endian bytes
    return [b - 256 if signed and b > 127 else b for b in bs]


def c_rows(entries, per_line):
    lines = []
    for i in range(0, len(entries), per_line):
        lines.append("    " + " ".join("{%s}," % ", ".join(str(x) for x in e) for e in entries[i:i + per_line]))
    return "\n".join(lines)


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    path = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[2] if len(sys.argv) == 3 else os.path.join(here, "..", "src", "kernels")
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        die("%s: %s" % (path, e.strerror))
    src = raw.decode("utf-8", "replace")
    tables = parse_tables(src, path)
    commit = ""
    try:
        commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(path)), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass

    for name in ("IQ1S_DELTA", "IQ1M_DELTA"):
        if define_float(src, name, path) != 0.125:
            die("%s: %s is %g, the decoders assume 0.125" % (path, name, define_float(src, name, path)))
    # the rule-defined tables: checked against the published ones, written from the rule
    for name, want in (("ksigns_iq2xs", [ksign(i) for i in range(128)]), ("kmask_iq2xs", [1 << j for j in range(8)])):
        if name not in tables:
            die("%s: no table %s" % (path, name))
        if tables[name][2] != want:
            die("%s: table %s does not follow its rule" % (path, name))

    out_tables = []  # (C name, C element type, entries, entry length)
    for gname, cname, nbytes, ctype, levels in GRIDS:
        if gname not in tables:
            die("%s: no table %s" % (path, gname))
        ttype, size, vals = tables[gname]
        want_t = "uint64_t" if nbytes == 8 else "uint32_t"
        if ttype != want_t:
            die("%s: table %s has type %s, expected %s" % (path, gname, ttype, want_t))
        if len(vals) != size:
            die("%s: table %s declares %d entries and has %d" % (path, gname, size, len(vals)))
        if len(set(vals)) != size:
            die("%s: table %s has repeated entries" % (path, gname))
        entries = [entry_bytes(v, nbytes, ctype == "int8_t") for v in vals]
        bad = [i for i, e in enumerate(entries) if not set(e) <= levels]
        if bad:
            die("%s: table %s entry %d has values %s outside %s" % (path, gname, bad[0], entries[bad[0]], sorted(levels)))
        out_tables.append((cname, ctype, entries, nbytes))
    signs = [ksign(i) for i in range(128)]
    sign_bytes = [[-1 if (s >> j) & 1 else 1 for j in range(8)] for s in range(256)]
    iq1 = [e for (cname, _, e, _) in out_tables if cname == "grok_iq1s_grid"][0]
    grid8 = [[8 * v for v in e] for e in iq1]

    src_name = "ggml/src/ggml-common.h"
    origin = "%s (sha256 %s%s)" % (src_name, hashlib.sha256(raw).hexdigest()[:16],
                                   ", llama.cpp commit " + commit[:12] if commit else "")
    crc = {}
    for cname, ctype, entries, _ in out_tables:
        crc[cname] = zlib.crc32(bytes(b & 0xFF for e in entries for b in e))
    crc["grok_iq_ksigns"] = zlib.crc32(bytes(signs))
    crc["grok_iq_sign_bytes"] = zlib.crc32(bytes(b & 0xFF for e in sign_bytes for b in e))
    crc["grok_iq1s_grid8"] = zlib.crc32(bytes(b & 0xFF for e in grid8 for b in e))

    h = []
    h.append("""/*
 * iq_tables.h - the codebooks of ggml's i-quant weight types, which are part
 * of the GGUF block formats of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S
 * and IQ1_M (the decoders in iquants.c and the SIMD files index them).
 * GENERATED by scripts/gen_iq_tables.py from
 * %s; do not edit.
 * Each grid entry is one codebook point: grid[i][j] is the magnitude (IQ1:
 * the value) of element j of a group of 8 (IQ3: 4) weights whose stored
 * index is i. grok_iq_ksigns[s] is the sign byte (bit j set: element j is
 * negative) of 7 stored sign bits s, the 8th bit making the number of minus
 * signs even. CRC-32 of each table's bytes, checked by test_iquants:
""" % origin)
    for cname in crc:
        h.append(" *   %-18s 0x%08x\n" % (cname, crc[cname]))
    h.append(""" */
#ifndef GROK_IQ_TABLES_H
#define GROK_IQ_TABLES_H

#include <stdint.h>

""")
    for cname, ctype, entries, nbytes in out_tables:
        h.append("/* %s */\nextern const %s %s[%d][%d];\n" % (WHAT[cname], ctype, cname, len(entries), nbytes))
    h.append("/* the IQ2_XXS, IQ2_XS and IQ3_XXS sign bytes of 7 stored bits */\n")
    h.append("extern const uint8_t grok_iq_ksigns[128];\n")
    h.append("/* derived: sign byte s as multipliers (element j: -1 if bit j of s is set, else 1) */\n")
    h.append("extern const int8_t grok_iq_sign_bytes[256][8];\n")
    h.append("/* derived: 8 * grok_iq1s_grid */\n")
    h.append("extern const int8_t grok_iq1s_grid8[2048][8];\n")
    for cname in crc:
        h.append("#define %s_CRC32 0x%08xu\n" % (cname.upper(), crc[cname]))
    h.append("\n#endif\n")

    c = []
    c.append("""/*
 * iq_tables.c - the i-quant codebooks declared in iq_tables.h.
 * GENERATED by scripts/gen_iq_tables.py from
 * %s; do not edit.
 */
#include "kernels/iq_tables.h"

/* clang-format off */
""" % origin)
    for cname, ctype, entries, nbytes in out_tables:
        c.append("_Alignas(64) const %s %s[%d][%d] = {\n%s\n};\n\n"
                 % (ctype, cname, len(entries), nbytes, c_rows(entries, 4 if nbytes == 8 else 6)))
    c.append("const uint8_t grok_iq_ksigns[128] = {\n")
    for i in range(0, 128, 16):
        c.append("    " + " ".join("%d," % s for s in signs[i:i + 16]) + "\n")
    c.append("};\n\n")
    c.append("_Alignas(64) const int8_t grok_iq_sign_bytes[256][8] = {\n%s\n};\n\n" % c_rows(sign_bytes, 4))
    c.append("_Alignas(64) const int8_t grok_iq1s_grid8[2048][8] = {\n%s\n};\n" % c_rows(grid8, 4))
    c.append("/* clang-format on */\n")

    for fname, text in (("iq_tables.h", "".join(h)), ("iq_tables.c", "".join(c))):
        dst = os.path.join(out_dir, fname)
        tmp = dst + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, dst)
        print("wrote %s" % dst)


if __name__ == "__main__":
    main()
