"""Mutations of real model files, driven by a random.Random (hypothesis's or a seeded one).

Byte-level mutations mostly break the syntax; token-level ones keep a
prototxt parseable and change what it says: numbers become edge values,
layer types and blob names are swapped, lines are dropped or repeated.
"""

from __future__ import annotations

import random
import re

# Values that sit on Caffe's edges: zero, negative, int32/uint32 limits, absurd sizes.
EDGE_NUMBERS = ["0", "1", "2", "3", "-1", "-3", "9", "17", "1000", "65536", "2147483647", "2147483648",
                "4294967295", "1000000000", "1000000000000", "0.0", "-0.5", "nan", "inf", "1e30"]
TYPES = ["Input", "Convolution", "Pooling", "InnerProduct", "LRN", "ReLU", "Dropout", "Softmax", "Concat",
         "Eltwise", "Split", "Slice", "Flatten", "Reshape", "Crop", "BatchNorm", "Scale", "Bias", "PReLU", "Power",
         "DummyData", "Python", "Data", "HDF5Output", "Deconvolution", "ArgMax", "Silence", "Frobnicate", ""]
_TOKEN = re.compile(r'"[^"\n]*"|-?\d+(?:\.\d+)?(?:e-?\d+)?|\b(?:MAX|AVE|STOCHASTIC|SUM|PROD|CUDNN|CAFFE|true|false)\b')


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Truncated, bit-flipped, spliced or chunk-deleted bytes, or random ones."""
    out = bytearray(data)
    kind = rng.choice(["truncate", "flip", "delete", "insert", "random"])
    if kind == "truncate":
        return bytes(out[: rng.randint(0, len(out))])
    if kind == "random":
        return rng.randbytes(rng.randint(0, 4096))
    for _ in range(rng.randint(1, 8)):
        if not out:
            break
        pos = rng.randrange(len(out))
        if kind == "flip":
            out[pos] ^= 1 << rng.randrange(8)
        elif kind == "delete":
            del out[pos : pos + rng.randint(1, 64)]
        else:
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
    return bytes(out)


def mutate_tokens(rng: random.Random, text: str) -> str:
    """A prototxt with a few numbers, strings, enums or lines changed."""
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["number", "number", "string", "enum", "line", "engine"])
        tokens = list(_TOKEN.finditer(text))
        if kind == "engine":
            # A CPU-only Caffe aborts on engine: CUDNN in any layer's parameters.
            blocks = list(re.finditer(r"_param\s*\{", text))
            if blocks:
                at = rng.choice(blocks).end()
                text = text[:at] + f" engine: {rng.choice(['CUDNN', 'CAFFE', 'DEFAULT'])} " + text[at:]
            continue
        if kind == "line":
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            if rng.random() < 0.5:
                del lines[i]
            else:
                lines.insert(rng.randrange(len(lines) + 1), lines[i])
            text = "\n".join(lines)
            continue
        wanted = {"number": lambda t: not t.startswith('"') and t[0] in "-0123456789",
                  "string": lambda t: t.startswith('"'),
                  "enum": lambda t: t[0].isalpha()}[kind]
        picks = [m for m in tokens if wanted(m.group(0))]
        if not picks:
            continue
        m = rng.choice(picks)
        if kind == "number":
            new = rng.choice(EDGE_NUMBERS)
        elif kind == "string":
            names = [t.group(0) for t in tokens if t.group(0).startswith('"')]
            new = f'"{rng.choice(TYPES)}"' if rng.random() < 0.4 else rng.choice(names)
        else:
            new = rng.choice(["MAX", "AVE", "STOCHASTIC", "SUM", "PROD", "CUDNN", "CAFFE", "true", "false"])
        text = text[: m.start()] + new + text[m.end():]
    return text


def mutate_prototxt(rng: random.Random, data: bytes) -> bytes:
    return mutate_tokens(rng, data.decode()).encode() if rng.random() < 0.7 else mutate_bytes(rng, data)


def mutate_caffemodel(rng: random.Random, data: bytes) -> bytes:
    """A caffemodel with its structure edited (shapes, counts, names, values), or its bytes mutated."""
    from caffe_relabel.netdef.proto import NetParameter

    if rng.random() < 0.3:
        # Byte mutations where the structure is (the head), not deep inside the float arrays.
        head = rng.randint(1, 4096)
        return mutate_bytes(rng, data[:head]) + data[head:]
    net = NetParameter()
    net.ParseFromString(data)
    for _ in range(rng.randint(1, 3)):
        # Recomputed each round: an earlier mutation may have dropped a layer's last blob.
        with_blobs = [layer for layer in net.layer if layer.blobs]
        if not with_blobs:
            break
        layer = rng.choice(with_blobs)
        blob = rng.choice(layer.blobs)
        kind = rng.choice(["dim", "dims", "data", "diff", "double", "nan", "legacy", "name", "drop_blob",
                           "drop_layer", "v1"])
        if kind == "dim" and len(blob.shape.dim):
            blob.shape.dim[rng.randrange(len(blob.shape.dim))] = int(float(rng.choice(EDGE_NUMBERS[:15])))
        elif kind == "dims":
            blob.shape.dim.append(rng.choice([1, 2, 0]))
        elif kind == "data":
            del blob.data[rng.randrange(len(blob.data) + 1):]
        elif kind == "diff":
            blob.diff.extend([0.5] * rng.choice([1, len(blob.data)]))
        elif kind == "double":
            blob.double_data.extend([0.25] * rng.choice([1, len(blob.data)]))
        elif kind == "nan" and len(blob.data):
            blob.data[rng.randrange(len(blob.data))] = rng.choice([float("nan"), float("inf"), 1e38])
        elif kind == "legacy" and all(-2**31 <= d < 2**31 for d in blob.shape.dim):
            # The legacy fields are int32: a dim another mutation pushed past that cannot be written there.
            dims = [1] * (4 - len(blob.shape.dim)) + list(blob.shape.dim)
            blob.ClearField("shape")
            blob.num, blob.channels, blob.height, blob.width = dims[-4:] if len(dims) >= 4 else dims
        elif kind == "name":
            layer.name = rng.choice([layer.name + "x", rng.choice(net.layer).name, ""])
        elif kind == "drop_blob":
            del layer.blobs[-1]
        elif kind == "drop_layer":
            net.layer.remove(layer)
        else:
            net.layers.add(name=layer.name)
    return net.SerializeToString()
