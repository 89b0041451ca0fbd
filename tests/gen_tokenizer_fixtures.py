#!/usr/bin/python3
"""Generates tests/fixtures/tokenizer_grok1.txt: inputs and the ids that
sentencepiece (Debian's python3-sentencepiece 0.1.97) gives for them with
the Grok-1 tokenizer, so that test_tokenizer.c can check libgrok's encoder
against an independent implementation.

The inputs are built from a fixed seed and from text in this script only,
so regenerating gives the same file on any machine. Each input is passed to
sentencepiece as raw bytes (the module accepts bytes and treats every
invalid UTF-8 byte as U+FFFD, as spm_encode does), which lets the fixture
cover invalid UTF-8 too.

File format: lines starting with '#' are comments; every other line is
    HEX<TAB>IDS              an input and its ids (encode)
or  D<TAB>IDS<TAB>HEX        ids and the text sentencepiece decodes them to
where HEX is bytes in lower-case hex (empty when empty) and IDS the ids
separated by single spaces. The decode cases use random id sequences
(byte pieces forming valid and invalid UTF-8, control and unknown ids,
pieces with and without the leading U+2581).

Usage: /usr/bin/python3 tests/gen_tokenizer_fixtures.py [--check] [--model M] [--out F]
  --check   regenerate in memory and compare with the committed file
            (exit 1 on a difference, 77 when the model or module is absent).
"""
import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, "..", "..", "shared", "tokenizers", "grok-1.model")
DEFAULT_OUT = os.path.join(HERE, "fixtures", "tokenizer_grok1.txt")
SEED = 20240317

PROSE = """The answer to life the universe and everything is of course forty-two.
It was the best of times, it was the worst of times, it was the age of wisdom,
it was the age of foolishness. Call me Ishmael. Some years ago - never mind how
long precisely - having little or no money in my purse, and nothing particular
to interest me on shore, I thought I would sail about a little and see the
watery part of the world. In the beginning God created the heaven and the earth.
Mixture-of-Experts models route each token to a few experts; Grok-1 has 314B
parameters, 8 experts, 2 of them active per token. Don't panic! "Quoted text,"
she said; (parenthetical) [bracketed] {braced} <angled> e.g. i.e. etc. U.S.A.
""".split()

CODE = [
    "def main(argv):\n    if len(argv) < 2:\n        return 1\n    print('hello, world')\n",
    "int main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; i++)\n\t\tputs(argv[i]);\n\treturn 0;\n}\n",
    "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n",
    "const x = await fetch(`https://api.example.com/v1/items?id=${id}&q=a+b`);\n",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name DESC LIMIT 10;\n",
    "fn add(a: i64, b: i64) -> i64 { a + b }\n\n\n// comment\n",
    "<html>\n  <body>\n    <p class=\"x\">Hi &amp; bye</p>\n  </body>\n</html>\n",
    "    \t  mixed   indentation\t\t\tand\ttabs   \n\n\n\n\n\n\n\n\n\n\n\nend",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "x = [i**2 for i in range(100) if i % 3 == 0]  # squares\r\n",
    "$ ls -la /usr/share/doc | grep -v '^d' > out.txt 2>&1 && echo ok\n",
]

SCRIPTS = [
    "日本語のテキストです。東京は大きな都市です。",
    "中文文本，你好世界！人工智能正在改变世界。",
    "한국어 텍스트입니다. 안녕하세요!",
    "مرحبا بالعالم، هذا نص باللغة العربية.",
    "שלום עולם, זה טקסט בעברית.",
    "Привет, мир! Это русский текст с ёжиком.",
    "नमस्ते दुनिया, यह हिंदी पाठ है।",
    "Γειά σου κόσμε, ελληνικό κείμενο.",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Ünïcödé äccénts: café naïve façade résumé Ångström",
    "e\u0301 a\u0308 o\u0302 combining marks n\u0303",
    "emoji 😀🙂🎉🚀 and flags 🇺🇸🇯🇵 and family 👨\u200d👩\u200d👧\u200d👦 and 👍🏽",
    "math ∑∫√∞≈≠≤≥ ∀x∈ℝ: x²≥0 and arrows →⇒⟶",
    "\u2581already\u2581escaped\u2581spaces and \ufffd replacement",
    "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 plane one 𐍈 𠜎 𠀀",
]

SPECIAL = ["<|separator|>", "<|mask|>", "<|control1|>", "<|control20|>", "[BOS]", "[EOS]",
           "[PAD]", "[UNK]", "<0x41>", "<0xFF>", "<|mask", "|>", "<|", "<|control21|>", "\u2581"]

INVALID = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
           b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xbf",
           b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3\x28", b"\xe2\x28\xa1", b"\x00",
           b"\xef\xbf\xbd", b"\xe2\x96\x81", b"\xc2\x80", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf"]


def rand_unicode(rng, n):
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            cp = rng.randrange(0x20, 0x7F)
        elif r < 0.7:
            cp = rng.randrange(0xA0, 0x800)
        elif r < 0.9:
            cp = rng.randrange(0x800, 0x10000)
        else:
            cp = rng.randrange(0x10000, 0x110000)
        if 0xD800 <= cp < 0xE000:
            cp = 0x41
        out.append(chr(cp))
    return "".join(out)


def prose(rng, n_words):
    return " ".join(rng.choice(PROSE) for _ in range(n_words))


def gen_inputs():
    rng = random.Random(SEED)
    inputs = [b"", b" ", b"  ", b"\n", b"\t", b"a", b"0", b"The answer to life the universe and everything is of course"]
    for _ in range(300):
        inputs.append(prose(rng, rng.randrange(1, 40)).encode())
    for _ in range(150):
        code = rng.choice(CODE)
        a = rng.randrange(len(code))
        inputs.append(code[a:a + rng.randrange(1, 200)].encode())
    for c in CODE:
        inputs.append(c.encode())
    for _ in range(250):
        s = rng.choice(SCRIPTS)
        a = rng.randrange(len(s))
        inputs.append((s[a:a + rng.randrange(1, 40)] + rng.choice(["", " ", prose(rng, 2)])).encode())
    for s in SCRIPTS:
        inputs.append(s.encode())
    ws = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u3000", "\u00a0", "\u2581", "\v", "\f"]
    for _ in range(250):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            parts.append(rng.choice(ws) * rng.randrange(1, 20) if rng.random() < 0.5 else rng.choice(PROSE))
        inputs.append("".join(parts).encode())
    for _ in range(200):
        r = rng.random()
        if r < 0.3:
            s = str(rng.randrange(10 ** rng.randrange(1, 30)))
        elif r < 0.6:
            s = "%.*f" % (rng.randrange(0, 8), rng.uniform(-1e6, 1e6))
        else:
            s = "%s %d, %s: %d-%02d-%02d %d:%02d" % (rng.choice(PROSE), rng.randrange(1000), rng.choice(PROSE),
                                                    rng.randrange(1900, 2100), rng.randrange(1, 13),
                                                    rng.randrange(1, 29), rng.randrange(24), rng.randrange(60))
        inputs.append(s.encode())
    for _ in range(100):
        host = "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randrange(3, 12)))
        path = "/".join(rng.choice(PROSE) for _ in range(rng.randrange(0, 5)))
        inputs.append(("%s://%s.%s/%s?q=%d&x=%s#frag" % (rng.choice(["http", "https", "ftp"]), host,
                                                        rng.choice(["com", "org", "io", "co.uk"]), path,
                                                        rng.randrange(10 ** 6), rng.choice(PROSE))).encode())
    for _ in range(150):
        parts = [rng.choice(SPECIAL) if rng.random() < 0.5 else rng.choice(PROSE) for _ in range(rng.randrange(1, 8))]
        inputs.append(rng.choice(["", " "]).join(parts).encode())
    for _ in range(200):
        inputs.append(rand_unicode(rng, rng.randrange(1, 60)).encode())
    for _ in range(200):
        n = rng.randrange(1, 64)
        inputs.append(bytes(rng.randrange(256) for _ in range(n)))
    for _ in range(200):
        parts = []
        for _ in range(rng.randrange(1, 10)):
            r = rng.random()
            if r < 0.4:
                parts.append(rng.choice(INVALID))
            elif r < 0.7:
                parts.append(rng.choice(PROSE).encode())
            else:
                parts.append(rng.choice(SCRIPTS)[:rng.randrange(1, 6)].encode())
            if rng.random() < 0.3:
                parts.append(b" ")
        inputs.append(b"".join(parts))
    for b in range(256):
        inputs.append(bytes([b]))
        inputs.append(b"x" + bytes([b]) + b" y")
    # Long inputs: prose, mixed text, one 100 KB run without spaces.
    inputs.append(prose(rng, 17000).encode()[:100000])
    inputs.append(("\n".join(rng.choice(CODE) + rng.choice(SCRIPTS) for _ in range(300))).encode()[:60000])
    inputs.append(b"a" * 100000)
    inputs.append(("ab" * 20000 + " " * 3000 + "9" * 3000).encode())
    inputs.append(bytes(rng.randrange(256) for _ in range(20000)))
    return inputs


def gen_decode_cases(sp):
    rng = random.Random(SEED + 1)
    n = sp.get_piece_size()
    byte0 = sp.piece_to_id("<0x00>")
    utf8 = [c.encode() for c in "aé€😀\u2581 "]
    cases = [[], [0], [1, 2], [3], [byte0 + 0x41], [325], [130089], [1, 325], [3, 325],
             [byte0 + 0x20, 325], [130089, 325], [130089, 130089]]
    for _ in range(400):
        ids = []
        for _ in range(rng.randrange(1, 12)):
            r = rng.random()
            if r < 0.15:
                ids.append(rng.randrange(0, 4))
            elif r < 0.45:
                ids.extend(byte0 + b for b in rng.choice(utf8 + [bytes([rng.randrange(256)])]))
            elif r < 0.6:
                ids.append(rng.choice([325, 130089, 327, 5, 14, 48]))
            else:
                ids.append(rng.randrange(n))
        cases.append(ids)
    return cases


def render(sp, inputs):
    lines = ["# tokenizer fixture for grok-1.model, generated by tests/gen_tokenizer_fixtures.py",
             "# with sentencepiece %s; format: HEX<TAB>IDS (see the script)" % getattr(sp_module, "__version__", "?"),
             "# inputs: %d" % len(inputs)]
    for b in inputs:
        ids = sp.encode(b)
        lines.append(b.hex() + "\t" + " ".join(str(i) for i in ids))
    for ids in gen_decode_cases(sp):
        text = sp.decode(ids).encode("utf-8")
        lines.append("D\t" + " ".join(str(i) for i in ids) + "\t" + text.hex())
    return "\n".join(lines) + "\n"


def main():
    global sp_module
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    try:
        import sentencepiece as sp_module
    except ImportError:
        print("SKIP: python3-sentencepiece is not installed")
        return 77
    if not os.path.exists(args.model):
        print("SKIP: %s not found" % args.model)
        return 77
    sp = sp_module.SentencePieceProcessor(model_file=args.model)
    text = render(sp, gen_inputs())
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                old = f.read()
        except OSError as e:
            print("FAIL: cannot read %s: %s" % (args.out, e))
            return 1
        if old != text:
            a, b = old.splitlines(), text.splitlines()
            for i, (x, y) in enumerate(zip(a, b)):
                if x != y:
                    print("FAIL: %s line %d differs from the regenerated fixture" % (args.out, i + 1))
                    break
            else:
                print("FAIL: %s has %d lines, regenerated %d" % (args.out, len(a), len(b)))
            return 1
        print("OK: %s matches sentencepiece (%d lines)" % (args.out, len(text.splitlines())))
        return 0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print("wrote %s (%d bytes)" % (args.out, len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
