#!/usr/bin/env bash
# make_corpus.sh - writes the seed corpora of the fuzz targets into
# tests/fuzz/corpus/<target>/ (committed; a few KB each). Seeds are made by
# the real tools where one exists: GGUF models and LoRA adapters by the
# grok command (grok new, grok train --lora), pickles by Python's pickler
# with the stand-ins of tests/gen_checkpoint.py, the SentencePiece model by
# spm_train; texts, request bodies and chat templates are written here.
# Regression seeds (inputs that once found a bug) are kept in the same
# folders under names starting with "regress-" and are never removed here.
#   bash tests/fuzz/make_corpus.sh [GROK_BINARY]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GROK=${1:-$ROOT/build/grok}
PY=/usr/bin/python3
C=$ROOT/tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
[ -x "$GROK" ] || { echo "make_corpus: $GROK is not built"; exit 1; }
command -v spm_train >/dev/null || { echo "make_corpus: spm_train (Debian package sentencepiece) is missing"; exit 1; }
for d in fuzz_gguf fuzz_pickle fuzz_spm fuzz_tokenizer fuzz_api fuzz_chat_template fuzz_chat_jsonl fuzz_lora fuzz_kernels fuzz_imatrix; do
  mkdir -p "$C/$d"
  find "$C/$d" -type f ! -name 'regress-*' -delete
done

# ---- GGUF: tiny models of every block size, tied and untied ----
tiny=(--layers 1 --heads 2 --kv-heads 1 --experts 2 --experts-used 1)
for t in f32 f16 bf16; do
  "$GROK" new -o "$C/fuzz_gguf/$t.gguf" "${tiny[@]}" --d-model 8 --ffn 8 --vocab 16 --type $t --ctx 64 >/dev/null 2>&1
done
for t in q8_0 q4_0; do
  "$GROK" new -o "$C/fuzz_gguf/$t.gguf" "${tiny[@]}" --d-model 32 --ffn 32 --vocab 8 --type $t --ctx 64 >/dev/null 2>&1
done
"$GROK" new -o "$C/fuzz_gguf/untied-f16.gguf" "${tiny[@]}" --d-model 8 --ffn 8 --vocab 16 --type f16 --untied \
  --ctx 64 >/dev/null 2>&1
head -c 200 "$C/fuzz_gguf/f32.gguf" > "$C/fuzz_gguf/truncated-header"
# the types grok.c reads but its writer does not (the community types and
# the i-quants): bytes from tests/ref/make_model.py's NumPy encoders; the
# 256-block ones with d_model 256 and their 32-block fallbacks for the
# matrices whose rows are 32 long (attn_output, ffn_down)
for t in q4_1 q5_1 iq4_nl mxfp4; do
  "$PY" "$ROOT/tests/ref/make_model.py" -o "$C/fuzz_gguf/$t.gguf" "${tiny[@]}" --d-model 32 --ffn 32 --vocab 8 \
    --type $t --ctx 64 --seed 7 >/dev/null
done
for tf in q2_K:q4_0 q3_K:q5_0 iq2_xxs:iq4_nl iq1_m:q4_1 iq3_s:mxfp4; do
  "$PY" "$ROOT/tests/ref/make_model.py" -o "$C/fuzz_gguf/${tf%%:*}.gguf" "${tiny[@]}" --d-model 256 --head-dim 16 \
    --ffn 32 --vocab 8 --type "${tf%%:*}" --fallback "${tf##*:}" --ctx 64 --seed 7 >/dev/null
done
# experts one tensor each (blk.N.ffn_gate.E.weight), as llama.cpp wrote MoE files before 2024-04
"$PY" "$ROOT/tests/gguf_rewrite.py" old-experts "$C/fuzz_gguf/q8_0.gguf" "$C/fuzz_gguf/old-experts-q8_0.gguf" \
  --order interleaved >/dev/null

# ---- LoRA: adapters trained for fuzz_lora.c's base shapes ----
"$GROK" new -o "$T/base.gguf" --d-model 32 --layers 1 --heads 2 --kv-heads 1 --experts 2 --experts-used 1 \
  --ffn 32 --vocab 300 --type q8_0 >/dev/null 2>&1
printf 'abcabd abcabd bcdbcd\n%.0s' $(seq 1 40) > "$T/text.txt"
for r in 1 2; do
  "$GROK" train --init "$T/base.gguf" --lora $r --lora-alpha 4 --data "$T/text.txt" --steps 1 --batch 1 \
    --seq 8 --threads 1 --seed $r -o "$C/fuzz_lora/rank$r.gguf" >/dev/null 2>&1
done
"$GROK" train --init "$T/base.gguf" --lora 1 --lora-targets attn --data "$T/text.txt" --steps 1 --batch 1 \
  --seq 8 --threads 1 -o "$C/fuzz_lora/attn-only.gguf" >/dev/null 2>&1

# ---- imatrix: grok imatrix on the LoRA base, in both formats ----
"$GROK" imatrix -m "$T/base.gguf" -f "$T/text.txt" --ctx 16 --chunks 2 -o "$C/fuzz_imatrix/im.gguf" >/dev/null 2>&1
"$GROK" imatrix -m "$T/base.gguf" -f "$T/text.txt" --ctx 16 --chunks 1 --output-format dat \
  -o "$C/fuzz_imatrix/im.dat" >/dev/null 2>&1

# ---- SentencePiece: a small byte-fallback BPE model, and the tokenizer texts ----
$PY - "$T/spm.txt" <<'EOF'
import sys
lines = ["The quick brown fox jumps over the lazy dog.", "Hello, world! 12345 67890",
         "Grüße aus Köln, ça va? naïve café", "日本語のテキストと中文文本", "مرحبا بالعالم",
         "emoji 😀🎉 and ZWJ 👩‍👩‍👧", "tabs\tand  double  spaces", "code: if (x < 3) { return y; }"]
open(sys.argv[1], "w").write("\n".join(lines * 20) + "\n")
EOF
spm_train --input="$T/spm.txt" --model_prefix="$T/bpe" --model_type=bpe --vocab_size=700 --hard_vocab_limit=false \
  --byte_fallback=true --character_coverage=1.0 --normalization_rule_name=identity --user_defined_symbols='<|mask|>' \
  --remove_extra_whitespaces=false --split_digits=true >/dev/null 2>&1
cp "$T/bpe.model" "$C/fuzz_spm/bpe-bytes.model"
spm_train --input="$T/spm.txt" --model_prefix="$T/plain" --model_type=bpe --vocab_size=120 --hard_vocab_limit=false \
  --character_coverage=0.98 --normalization_rule_name=identity >/dev/null 2>&1
cp "$T/plain.model" "$C/fuzz_spm/bpe-unk.model"

$PY - "$C" <<'EOF'
import os, sys
c = sys.argv[1]
def put(target, name, data):
    with open(os.path.join(c, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
# tokenizer: first byte even = text (bit 1: add BOS/EOS), odd = 24-bit ids
texts = ["Hello world", "  leading spaces and trailing  ", "\n\n\nnewlines\r\n", "12345 3.14159",
         "Grüße, ça va? 日本語 مرحبا 😀👩‍👩‍👧", "\u2581already\u2581escaped", "<|mask|><s></s>",
         "\t\x00\x01 control", ""]
for i, t in enumerate(texts):
    put("fuzz_tokenizer", "text%d" % i, bytes([2 * (i % 2)]) + t.encode())
put("fuzz_tokenizer", "invalid-utf8", b"\x00abc\xff\xfe\xc3(\xe2\x82\xf0\x9f\x98")
put("fuzz_tokenizer", "ids", b"\x01" + bytes(range(0, 96)))
# api: first byte even = completion, odd = chat
bodies = [
    (0, '{"prompt":"Hello","max_tokens":4,"temperature":0}'),
    (0, '{"prompt":[1,2,3],"max_tokens":2,"logprobs":3,"echo":true,"stop":["\\n","x"]}'),
    (0, '{"prompt":["one"],"n":2,"seed":-5,"top_k":40,"top_p":0.9,"min_p":0.05,"stream":true,'
        '"stream_options":{"include_usage":true}}'),
    (0, '{"prompt":"","presence_penalty":1.5,"frequency_penalty":-1,"repeat_penalty":1.1,"model":"m"}'),
    (1, '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],'
        '"max_completion_tokens":8,"logprobs":true,"top_logprobs":2}'),
    (1, '{"messages":[{"role":"developer","content":[{"type":"text","text":"a"},'
        '{"type":"text","text":"b"}]},{"role":"assistant","content":null}],"stop":"User:"}'),
    (1, '{"messages":[],"n":99}'),
    (0, '{"prompt":"x","max_tokens":1e12} trailing'),
    # think requests (src/server/think_api.c)
    (0, '{"prompt":"2+2=","max_tokens":4,"think":{"samples":3,"select":"vote","extract":"last_number",'
        '"candidates":true},"stream":true}'),
    (1, '{"messages":[{"role":"user","content":"Q?"}],"reasoning_effort":"low",'
        '"think":{"select":"logprob","extract":"regex:([0-9]+)"},"logprobs":true}'),
    (1, '{"messages":[{"role":"user","content":"Q?"}],"think":{"samples":2,"extract":"json:answer"}}'),
    (0, '{"prompt":"x","think":{"samples":0,"select":"verifier","extract":"regex:("},"n":2}'),
]
for i, (k, b) in enumerate(bodies):
    put("fuzz_api", "body%d" % i, bytes([k]) + b.encode())
# chat templates (grok serve --chat-template)
put("fuzz_chat_template", "builtin", "system=System: {content}\\n\\n\nuser=User: {content}\\n\\n\n"
    "assistant=Assistant: {content}\\n\\n\ngeneration=Assistant:\nstop=\\nUser:\n")
put("fuzz_chat_template", "chatml", "# ChatML\nsystem=<|im_start|>system\\n{content}<|im_end|>\\n\n"
    "user=<|im_start|>user\\n{content}<|im_end|>\\n\nassistant=<|im_start|>assistant\\n{content}<|im_end|>\\n\n"
    "generation=<|im_start|>assistant\\n\nstop=<|im_end|>\n")
put("fuzz_chat_template", "empty-stop", "stop=\r\ngeneration=\n\n")
put("fuzz_chat_template", "bad", "user=no placeholder\nbogus\nx=\\q\n")
# chat SFT data (grok train --data-format chat): the first byte sets the
# sequence length (2 + byte % 200), then JSONL
fx = open(os.path.join(c, "../../fixtures/chat-capitals.jsonl"), "rb").read()
put("fuzz_chat_jsonl", "capitals", b"\xc7" + fx)
put("fuzz_chat_jsonl", "short-seq", b"\x0a" + fx.split(b"\n")[1] + b"\n")
put("fuzz_chat_jsonl", "parts", b"c" + '{"messages": [{"role": "developer", "content": [{"type": "text", '
    '"text": "Be brief."}]}, {"role": "user", "content": "Hi\\u00e9"}, {"role": "assistant", "content": '
    '[{"type": "text", "text": "Hello."}]}]}\r\n\n  \n'.encode())
put("fuzz_chat_jsonl", "bad-line2", b"c" + fx.split(b"\n")[0] + b'\n{"messages": [{"role": "robot", "content": 3}]}\n')
# kernels: type, size, tokens, then weight bytes and activations
import struct
# one seed per type index (the target takes the first byte modulo the
# number of types this build computes: 40 covers them all, with the
# community types and the i-quants)
for t in range(40):
    w = bytes((j * 37 + t) & 0xff for j in range(300))
    x = struct.pack("<8f", 1.0, -2.5, 0.0, 1e-30, 3e38, -0.0, float("nan"), float("inf"))
    put("fuzz_kernels", "type%d" % t, bytes([t, t, t]) + w + x * 4)
EOF

# ---- pickles: the official checkpoint's two kinds of file ----
(cd "$ROOT/tests" && $PY - "$C/fuzz_pickle" <<'EOF'
import os, sys, __main__
import numpy as np
import gen_checkpoint as g
g.install_standin()  # ml_dtypes.bfloat16 as numpy pickles a user-defined dtype
__main__.QuantizedWeight8bit = g.QuantizedWeight8bit  # the official pickles name __main__
out = sys.argv[1]
rng = np.random.default_rng(1)
g.dump(os.path.join(out, "f32.pkl"), np.array([1.5, -2.0, 3.25], dtype=np.float32))
g.dump(os.path.join(out, "f32-2d.pkl"), rng.standard_normal((2, 3)).astype(np.float32))
w = rng.integers(-128, 128, size=(4, 3), dtype=np.int8)
g.dump(os.path.join(out, "qw8.pkl"), g.QuantizedWeight8bit(w, g.BF16Array(g.bf16_bits(np.array([[1.0, 2.0, 3.0]])))))
w3 = rng.integers(-128, 128, size=(2, 8, 2), dtype=np.int8)
s3 = g.BF16Array(g.bf16_bits(rng.standard_normal((2, 2, 2))))
g.dump(os.path.join(out, "qw8-experts.pkl"), g.QuantizedWeight8bit(w3, s3))
g.dump(os.path.join(out, "qw8-protocol3.pkl"), g.QuantizedWeight8bit(w, g.BF16Array(g.bf16_bits(np.array([[0.5, -4.0, 8.0]])))), 3)
EOF
)
du -sh "$C"/* | sed 's|'"$C"'/||'
