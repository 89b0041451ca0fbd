#!/usr/bin/env bash
# make_corpus.sh - rebuilds the bundled model's training text: the King
# James Version of the Bible from Debian's bible-kjv-text package (the
# 1611 translation's text is public domain; see
# /usr/share/doc/bible-kjv-text/copyright), one verse per line, verse
# numbers and chapter headings removed. Writes build/corpus/kjv.txt
# (4,137,848 bytes, 31,102 verses).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v bible >/dev/null || { sudo -n true 2>/dev/null && S=sudo || S=; $S apt-get install -y bible-kjv; }
mkdir -p build/corpus
bible gen1:1-rev22:21 > build/corpus/kjv-raw.txt
/usr/bin/python3 - build/corpus/kjv-raw.txt build/corpus/kjv.txt <<'PY'
import re, sys
out, cur = [], None
for ln in open(sys.argv[1]).read().split('\n'):
    m = re.match(r'^\s+(\d+) (.*)$', ln)
    if m:                       # a verse starts: "  N text"
        if cur: out.append(cur)
        cur = m.group(2).strip()
    elif ln.strip() == '':      # blank line: end of a chapter
        if cur: out.append(cur)
        cur = None
    elif cur is not None and not re.match(r'^[1-3]?\s?[A-Z][a-z]+( [A-Za-z]+)* \d+$', ln):
        cur += ' ' + ln.strip() # continuation of a wrapped verse
    else:                       # a heading such as "Genesis 1"
        if cur: out.append(cur)
        cur = None
if cur: out.append(cur)
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
print(f"{sys.argv[2]}: {len(out)} verses")
PY
