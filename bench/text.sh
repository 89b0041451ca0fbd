# bench/text.sh - sourced by the bench scripts that measure quality: sets
# TEXT (unless given) to DIR/text.txt, made once from README.md, docs/*.md
# and ../shared/GROK1.md (where present), the text the docs' perplexity and
# KL figures are measured on (figures dated before 2026-12-06 used the
# README of their day, which then held most of docs/). Run from the
# repository root.
bench_text() { # DIR
  TEXT=${TEXT:-$1/text.txt}
  if [ ! -f "$TEXT" ]; then
    cat README.md docs/*.md > "$TEXT"
    [ -f ../shared/GROK1.md ] && cat ../shared/GROK1.md >> "$TEXT"
  fi
  return 0
}
