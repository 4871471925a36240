#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin + vocabulary.txt) to whisper.cpp's ggml file.

The only Whisper weights on the package registries here are CTranslate2 conversions, and
whisper.cpp reads its own format. This writes that format the way whisper.cpp's
convert-pt-to-ggml.py does from the PyTorch checkpoint: same header, mel filters, vocabulary,
tensor names and types. Python standard library only.

usage: whisper_ct2_to_ggml.py MODEL_DIR OUT.bin
"""

import math
import os
import re
import struct
import sys

# CTranslate2 DataType ids.
F32, I8, I16, I32, F16 = 0, 1, 2, 3, 4
ITEM_SIZE = {F32: 4, I8: 1, I16: 2, I32: 4, F16: 2}
STRUCT_CODE = {F32: "f", I8: "b", I16: "h", I32: "i", F16: "e"}


class Tensor:
    def __init__(self, shape, dtype, data):
        self.shape, self.dtype, self.data = shape, dtype, data

    def rows(self, start, stop):
        """Rows start..stop of a row-major tensor, as a new tensor."""
        row = ITEM_SIZE[self.dtype] * (math.prod(self.shape[1:]) if len(self.shape) > 1 else 1)
        return Tensor([stop - start] + self.shape[1:], self.dtype, self.data[start * row : stop * row])

    def scalar(self):
        return struct.unpack("<" + STRUCT_CODE[self.dtype], self.data)[0]

    def cast(self, dtype):
        """The same values as `dtype` (F32 or F16)."""
        if self.dtype == dtype:
            return self
        n = len(self.data) // ITEM_SIZE[self.dtype]
        values = struct.unpack("<%d%s" % (n, STRUCT_CODE[self.dtype]), self.data)
        return Tensor(self.shape, dtype, struct.pack("<%d%s" % (n, STRUCT_CODE[dtype]), *values))


def read_ct2(path):
    """CTranslate2's model.bin (binary version 6): variables by name, aliases resolved."""
    with open(path, "rb") as f:
        def u(fmt):
            size = struct.calcsize("<" + fmt)
            return struct.unpack("<" + fmt, f.read(size))[0]

        def string():
            n = u("H")
            return f.read(n)[:-1].decode()

        version = u("I")
        if version != 6:
            sys.exit(f"{path}: CTranslate2 binary version {version}, expected 6")
        spec = string()
        if spec != "WhisperSpec":
            sys.exit(f"{path}: a {spec}, not a Whisper model")
        u("I")  # spec revision
        variables = {}
        for _ in range(u("I")):
            name = string()
            shape = [u("I") for _ in range(u("B"))]
            dtype = u("B")
            variables[name] = Tensor(shape, dtype, f.read(u("I")))
        for _ in range(u("I")):
            alias, target = string(), string()
            variables[alias] = variables[target]
    return variables


def bytes_to_unicode():
    """GPT-2's reversible byte <-> printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def vocabulary(path):
    """Raw bytes of each BPE token, in id order, up to the first special token."""
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    tokens = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            token = line.rstrip("\n")
            if token.startswith("<|") and token.endswith("|>"):
                break
            tokens.append(bytes(decoder[c] for c in token))
    return tokens


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel(sr, n_fft, n_mels): Slaney mel scale and area normalization,
    as Whisper's mel_filters.npz holds."""
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def hz_to_mel(f):
        return min_log_mel + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        return min_log_hz * math.exp(logstep * (m - min_log_mel)) if m >= min_log_mel else f_sp * m

    n_freqs = n_fft // 2 + 1
    fft_freqs = [i * (sr / 2) / (n_freqs - 1) for i in range(n_freqs)]
    top = hz_to_mel(sr / 2)
    mel_f = [mel_to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    weights = []
    for i in range(n_mels):
        lo, mid, hi = mel_f[i], mel_f[i + 1], mel_f[i + 2]
        enorm = 2.0 / (hi - lo)
        row = []
        for f in fft_freqs:
            lower = (f - lo) / (mid - lo)
            upper = (hi - f) / (hi - mid)
            row.append(max(0.0, min(lower, upper)) * enorm)
        weights.append(row)
    return weights


def ggml_tensors(v, n_audio_layer, n_text_layer, d):
    """(whisper.cpp name, tensor) in the order and with the names convert-pt-to-ggml.py writes."""
    out = [
        ("encoder.positional_embedding", v["encoder/position_encodings/encodings"]),
        ("encoder.conv1.weight", v["encoder/conv1/weight"]),
        ("encoder.conv1.bias", v["encoder/conv1/bias"]),
        ("encoder.conv2.weight", v["encoder/conv2/weight"]),
        ("encoder.conv2.bias", v["encoder/conv2/bias"]),
    ]

    def self_attention(dst, src):
        qkv_w, qkv_b = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
        # CTranslate2 fuses query, key and value; the key has no bias (CTranslate2 stores zeros).
        return [
            (f"{dst}.query.weight", qkv_w.rows(0, d)),
            (f"{dst}.query.bias", qkv_b.rows(0, d)),
            (f"{dst}.key.weight", qkv_w.rows(d, 2 * d)),
            (f"{dst}.value.weight", qkv_w.rows(2 * d, 3 * d)),
            (f"{dst}.value.bias", qkv_b.rows(2 * d, 3 * d)),
            (f"{dst}.out.weight", v[f"{src}/linear_1/weight"]),
            (f"{dst}.out.bias", v[f"{src}/linear_1/bias"]),
        ]

    def cross_attention(dst, src):
        kv_w, kv_b = v[f"{src}/linear_1/weight"], v[f"{src}/linear_1/bias"]
        return [
            (f"{dst}.query.weight", v[f"{src}/linear_0/weight"]),
            (f"{dst}.query.bias", v[f"{src}/linear_0/bias"]),
            (f"{dst}.key.weight", kv_w.rows(0, d)),
            (f"{dst}.value.weight", kv_w.rows(d, 2 * d)),
            (f"{dst}.value.bias", kv_b.rows(d, 2 * d)),
            (f"{dst}.out.weight", v[f"{src}/linear_2/weight"]),
            (f"{dst}.out.bias", v[f"{src}/linear_2/bias"]),
        ]

    def norm(dst, src):
        return [(f"{dst}.weight", v[f"{src}/gamma"]), (f"{dst}.bias", v[f"{src}/beta"])]

    def mlp(dst, src):
        return [
            (f"{dst}.mlp.0.weight", v[f"{src}/ffn/linear_0/weight"]),
            (f"{dst}.mlp.0.bias", v[f"{src}/ffn/linear_0/bias"]),
            (f"{dst}.mlp.2.weight", v[f"{src}/ffn/linear_1/weight"]),
            (f"{dst}.mlp.2.bias", v[f"{src}/ffn/linear_1/bias"]),
        ] + norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    for i in range(n_audio_layer):
        dst, src = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        out += self_attention(f"{dst}.attn", f"{src}/self_attention")
        out += norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        out += mlp(dst, src)
    out += norm("encoder.ln_post", "encoder/layer_norm")

    out += [
        ("decoder.positional_embedding", v["decoder/position_encodings/encodings"]),
        ("decoder.token_embedding.weight", v["decoder/embeddings/weight"]),
    ]
    for i in range(n_text_layer):
        dst, src = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        out += self_attention(f"{dst}.attn", f"{src}/self_attention")
        out += norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        out += cross_attention(f"{dst}.cross_attn", f"{src}/attention")
        out += norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        out += mlp(dst, src)
    out += norm("decoder.ln", "decoder/layer_norm")
    return out


def convert(model_dir, out_path):
    v = read_ct2(os.path.join(model_dir, "model.bin"))
    layers = lambda side: 1 + max(int(m.group(1)) for k in v for m in [re.match(side + r"/layer_(\d+)/", k)] if m)
    n_audio_layer, n_text_layer = layers("encoder"), layers("decoder")
    n_vocab, d = v["decoder/embeddings/weight"].shape
    hparams = [
        n_vocab,
        v["encoder/position_encodings/encodings"].shape[0],  # n_audio_ctx
        v["encoder/conv1/weight"].shape[0],  # n_audio_state
        v["encoder/num_heads"].scalar(),
        n_audio_layer,
        v["decoder/position_encodings/encodings"].shape[0],  # n_text_ctx
        d,  # n_text_state
        v["decoder/num_heads"].scalar(),
        n_text_layer,
        v["encoder/conv1/weight"].shape[1],  # n_mels
        1,  # f16
    ]
    tokens = vocabulary(os.path.join(model_dir, "vocabulary.txt"))
    filters = mel_filters(n_mels=hparams[9])

    tmp = out_path + ".part"
    with open(tmp, "wb") as out:
        out.write(struct.pack("<i", 0x67676D6C))  # "ggml"
        out.write(struct.pack("<11i", *hparams))
        out.write(struct.pack("<ii", len(filters), len(filters[0])))
        for row in filters:
            out.write(struct.pack("<%df" % len(row), *row))
        out.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            out.write(struct.pack("<i", len(token)) + token)
        for name, t in ggml_tensors(v, n_audio_layer, n_text_layer, d):
            shape = list(t.shape)
            # Small tensors, conv biases and positional embeddings are f32 in whisper.cpp.
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                shape = [shape[0], 1]
            keep_f32 = len(shape) < 2 or name.endswith("conv1.bias") or name.endswith("conv2.bias") or name.endswith("positional_embedding")
            t = t.cast(F32 if keep_f32 else F16)
            encoded = name.encode()
            out.write(struct.pack("<iii", len(shape), len(encoded), 0 if keep_f32 else 1))
            out.write(struct.pack("<%di" % len(shape), *reversed(shape)))
            out.write(encoded)
            out.write(t.data)
    os.replace(tmp, out_path)
    print(f"wrote {out_path}: {n_audio_layer}+{n_text_layer} layers, width {d}, {len(tokens)} tokens")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2])
