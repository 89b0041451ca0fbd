# bench/text.sh - sourced by the bench scripts that measure quality: sets
# TEXT (unless given) to DIR/text.txt, made once from README.md and
# ../shared/GROK1.md (where present), the text the README's perplexity and
# KL figures are measured on. Run from the repository root.
bench_text() { # DIR
  TEXT=${TEXT:-$1/text.txt}
  if [ ! -f "$TEXT" ]; then
    cat README.md > "$TEXT"
    [ -f ../shared/GROK1.md ] && cat ../shared/GROK1.md >> "$TEXT"
  fi
  return 0
}
