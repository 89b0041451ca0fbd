# tests/mix_rules_models.sh - the models and cases on which grok quantize's
# mix rules are compared with llama-quantize's (bench/mix_rules.sh runs both;
# tests/mix_rules_test.sh compares with the stored lists). Sourced.
#
# g8: Grok-1's shape (8 experts, 8 heads on 2 KV heads: n_gqa 4, tied head),
#     16 layers so that n/8 and n/16 pick different layers;
# u8: 8 experts, n_gqa 2, untied, 96-column down matrices (fallbacks);
# e4: 4 experts, no GQA, untied, 8 layers; e2: 2 experts, n_gqa 2, tied.
MIX_RULES_SHAPES="
g8:--d-model 256 --layers 16 --heads 8 --kv-heads 2 --experts 8 --experts-used 2 --ffn 256 --vocab 300 --seed 21
u8:--d-model 256 --layers 8 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 96 --vocab 300 --untied --seed 22
e4:--d-model 256 --layers 8 --heads 4 --kv-heads 4 --experts 4 --experts-used 2 --ffn 256 --vocab 300 --untied --seed 23
e2:--d-model 256 --layers 8 --heads 4 --kv-heads 2 --experts 2 --experts-used 1 --ffn 256 --vocab 300 --seed 24"
MIX_RULES_MIXES="Q4_0 Q4_1 Q5_0 Q5_1 IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ1_S IQ1_M Q2_K Q2_K_S IQ3_XXS IQ3_S IQ3_M
IQ3_XS Q3_K_S Q3_K_M Q3_K_L IQ4_NL IQ4_XS Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0 F16 BF16 F32"
# MODEL:MIX:IMATRIX(0/1):FLAGS (commas for spaces)
MIX_RULES_CASES=$(for m in g8 u8 e4 e2; do for x in $MIX_RULES_MIXES; do echo "$m:$x:0:" "$m:$x:1:"; done; done
  echo "g8:IQ2_XXS:1:--pure u8:Q2_K:0:--pure u8:IQ3_S:0:--pure g8:Q3_K_M:0:--output-tensor-type,q8_0"
  echo "u8:Q4_K_M:0:--output-tensor-type,q4_0,--token-embedding-type,q2_K e4:IQ2_M:1:--token-embedding-type,iq4_nl")

# mix_rules_models GROK DIR TEXT: writes DIR/MODEL.gguf and DIR/MODEL.imatrix.gguf
mix_rules_models() {
  local g=$1 dir=$2 text=$3 line name shape
  while read -r line; do
    [ -n "$line" ] || continue
    name=${line%%:*} shape=${line#*:}
    [ -f "$dir/$name.gguf" ] || "$g" new -o "$dir/$name.gguf" $shape >/dev/null 2>&1 || return 1
    [ -f "$dir/$name.imatrix.gguf" ] || "$g" imatrix -m "$dir/$name.gguf" -f "$text" --ctx 32 --chunks 1 \
      -o "$dir/$name.imatrix.gguf" >/dev/null 2>&1 || return 1
  done <<< "$MIX_RULES_SHAPES"
}

# mix_rules_grok GROK DIR CASE: grok's plan for CASE, "name type" lines
mix_rules_grok() {
  local g=$1 dir=$2 model mix imx flags args=()
  IFS=: read -r model mix imx flags <<< "$3"
  [ "$imx" = 1 ] && args+=(--imatrix "$dir/$model.imatrix.gguf")
  [ -n "$flags" ] && args+=(${flags//,/ })
  "$g" quantize --dry-run "${args[@]}" "$dir/$model.gguf" "$mix" 2>/dev/null | awk '{print $1, $4}'
}
