# ckpt_lib.sh - sourced by the tests of `grok convert` (not a test itself):
# a tiny SentencePiece tokenizer for the generated checkpoints. The caller
# sets GROK_SRC, has cd'ed into its scratch dir and defines fail().

# make_tokenizer VOCAB: tok.model, a BPE model of VOCAB pieces with Grok-1's
# special ids, trained on the project's own C sources
make_tokenizer() {
    command -v spm_train >/dev/null || { echo "SKIP: spm_train (sentencepiece) not installed"; exit 77; }
    cat "$GROK_SRC"/src/*/*.c > text.txt
    spm_train --input=text.txt --model_prefix=tok --vocab_size="$1" --model_type=bpe \
        --byte_fallback=true --normalization_rule_name=identity --remove_extra_whitespaces=false \
        --split_digits=true --pad_id=0 --bos_id=1 --eos_id=2 --unk_id=3 --pad_piece='[PAD]' \
        --bos_piece='[BOS]' --eos_piece='[EOS]' --unk_piece='[UNK]' --minloglevel=2 \
        >/dev/null 2>&1 || fail "spm_train"
}
