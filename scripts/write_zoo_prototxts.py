"""Write the zoo deploy nets that could not be vendored verbatim.

VGG-16, NIN (ImageNet) and DenseNet-121 are written from their published
architectures with BVLC layers (see prototxt/zoo/LICENSES.md for why each one
is not a copy). Run from the repository root:

    python scripts/write_zoo_prototxts.py

The output is committed; rerunning rewrites the same bytes.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "prototxt" / "zoo"

HEADER = 'name: "{name}"\nforce_backward: true\n# {note}\n' \
    'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 3 dim: 224 dim: 224 }} }} }}\n'


def conv(name: str, bottom: str, top: str, num: int, k: int, stride: int = 1, pad: int = 0, bias: bool = True) -> str:
    extra = "" if bias else " bias_term: false"
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top}" convolution_param {{ '
            f"num_output: {num} kernel_size: {k} stride: {stride} pad: {pad}{extra} }} }}\n")


def relu(name: str, blob: str) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n'


def pool(name: str, bottom: str, top: str, kind: str, k: int = 0, stride: int = 1, pad: int = 0,
         global_pooling: bool = False) -> str:
    geometry = "global_pooling: true" if global_pooling else f"kernel_size: {k} stride: {stride} pad: {pad}"
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{top}" pooling_param {{ '
            f"pool: {kind} {geometry} }} }}\n")


def dropout(name: str, blob: str) -> str:
    return (f'layer {{ name: "{name}" type: "Dropout" bottom: "{blob}" top: "{blob}" '
            "dropout_param { dropout_ratio: 0.5 } }\n")


def fc(name: str, bottom: str, num: int) -> str:
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
            f"inner_product_param {{ num_output: {num} }} }}\n")


def softmax(bottom: str) -> str:
    return f'layer {{ name: "prob" type: "Softmax" bottom: "{bottom}" top: "prob" }}\n'


def vgg16() -> str:
    """Simonyan & Zisserman 2015, configuration D; layer names as in the authors' Caffe release."""
    text = HEADER.format(name="VGG_ILSVRC_16_layers", note="VGG-16 (configuration D), written from the paper.")
    bottom = "data"
    for stage, (n, width) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], start=1):
        for i in range(1, n + 1):
            name = f"conv{stage}_{i}"
            text += conv(name, bottom, name, width, 3, pad=1) + relu(f"relu{stage}_{i}", name)
            bottom = name
        text += pool(f"pool{stage}", bottom, f"pool{stage}", "MAX", 2, 2)
        bottom = f"pool{stage}"
    text += fc("fc6", bottom, 4096) + relu("relu6", "fc6") + dropout("drop6", "fc6")
    text += fc("fc7", "fc6", 4096) + relu("relu7", "fc7") + dropout("drop7", "fc7")
    return text + fc("fc8", "fc7", 1000) + softmax("fc8")


def nin_imagenet() -> str:
    """Lin, Chen & Yan 2014, the ImageNet model of the BVLC model zoo (mlpconv blocks, global average pooling)."""
    text = HEADER.format(name="nin_imagenet", note="Network in Network (ImageNet), written from the published model.")
    blocks = [  # (conv name, top, width, kernel, stride, pad), two 1x1 "cccp" layers after each
        ("conv1", "conv1", 96, 11, 4, 0), ("conv2", "conv2", 256, 5, 1, 2),
        ("conv3", "conv3", 384, 3, 1, 1), ("conv4-1024", "conv4", 1024, 3, 1, 1),
    ]
    cccp_widths = [(96, 96), (256, 256), (384, 384), (1024, 1000)]
    bottom, r, c = "data", 0, 1
    for b, ((name, top, width, k, stride, pad), widths) in enumerate(zip(blocks, cccp_widths), start=1):
        text += conv(name, bottom, top, width, k, stride, pad) + relu(f"relu{r}", top)
        r += 1
        bottom = top
        for w in widths:
            suffix = "-1024" if b == 4 else ""
            top = f"cccp{c}"
            text += conv(f"{top}{suffix}", bottom, top, w, 1) + relu(f"relu{r}", top)
            bottom, r, c = top, r + 1, c + 1
        if b < 4:
            text += pool(f"pool{b}", bottom, f"pool{b}", "MAX", 3, 2)
            bottom = f"pool{b}"
        if b == 3:
            text += dropout("drop", bottom)
    return text + pool("pool4", bottom, "pool4", "AVE", 6, 1) + softmax("pool4")


def bn_relu(prefix: str, bottom: str) -> tuple[str, str]:
    """BatchNorm + Scale + ReLU into a new blob (a DenseNet's concatenated input is reused, so never in place)."""
    top = f"{prefix}/bn"
    text = (f'layer {{ name: "{prefix}/bn" type: "BatchNorm" bottom: "{bottom}" top: "{top}" '
            "batch_norm_param { use_global_stats: true } }\n"
            f'layer {{ name: "{prefix}/scale" type: "Scale" bottom: "{top}" top: "{top}" '
            "scale_param { bias_term: true } }\n")
    return text + relu(f"{prefix}/relu", top), top


def densenet121() -> str:
    """Huang et al. 2017, DenseNet-BC-121 (k = 32, blocks 6-12-24-16, compression 0.5)."""
    text = HEADER.format(name="DenseNet-121", note="DenseNet-121, written from the paper with BVLC layers.")
    text += conv("conv1", "data", "conv1", 64, 7, 2, 3, bias=False)
    part, top = bn_relu("conv1", "conv1")
    # pad 0: Caffe rounds pooled sizes up, so 112 -> 56 as in the paper's Table 1.
    text += part + pool("pool1", top, "pool1", "MAX", 3, 2)
    bottom, channels, growth = "pool1", 64, 32
    for block, layers in enumerate([6, 12, 24, 16], start=1):
        for i in range(1, layers + 1):
            p = f"conv{block + 1}_{i}"
            part, top = bn_relu(f"{p}/x1", bottom)
            text += part + conv(f"{p}/x1", top, f"{p}/x1", 4 * growth, 1, bias=False)
            part, top = bn_relu(f"{p}/x2", f"{p}/x1")
            text += part + conv(f"{p}/x2", top, f"{p}/x2", growth, 3, pad=1, bias=False)
            text += (f'layer {{ name: "concat_{block + 1}_{i}" type: "Concat" bottom: "{bottom}" '
                     f'bottom: "{p}/x2" top: "concat_{block + 1}_{i}" }}\n')
            bottom, channels = f"concat_{block + 1}_{i}", channels + growth
        if block < 4:
            p = f"conv{block + 1}_blk"
            channels //= 2
            part, top = bn_relu(p, bottom)
            text += part + conv(p, top, p, channels, 1, bias=False)
            text += pool(f"pool{block + 1}", p, f"pool{block + 1}", "AVE", 2, 2)
            bottom = f"pool{block + 1}"
    part, top = bn_relu("conv5_blk", bottom)
    text += part + pool("pool5", top, "pool5", "AVE", global_pooling=True)
    return text + fc("fc6", "pool5", 1000) + softmax("fc6")


def main() -> None:
    for name, make in [("vgg16", vgg16), ("nin_imagenet", nin_imagenet), ("densenet121", densenet121)]:
        (OUT / f"{name}.prototxt").write_text(make())


if __name__ == "__main__":
    main()
