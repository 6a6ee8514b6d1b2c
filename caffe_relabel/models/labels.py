"""Class labels files in Caffe's ``synset_words.txt`` format: one ``<id> <name>`` line per class, in class order.

``n01440764 tench, Tinca tinca`` is class 0 of ILSVRC-2012: the id is the
first word (a WordNet id there, any word elsewhere), the name the rest of the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from caffe_relabel.errors import ModelFormatError
from caffe_relabel.files.bounded_read import read_bounded

FORMAT = "'<id> <class name>' per line, as Caffe's synset_words.txt"


@dataclass(frozen=True)
class Labels:
    """The ids and names of a labels file, index = class."""

    ids: tuple[str, ...]
    names: tuple[str, ...]


def read_labels(path: "str | os.PathLike[str]", num_classes: Optional[int] = None) -> Labels:
    """The labels in ``path``; a malformed line, a repeated id, or (given ``num_classes``) another count of
    classes is a ModelFormatError naming the file (and the line)."""
    data = read_bounded(path, "labels file", "list", ModelFormatError)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ModelFormatError(f"{path}: labels file is not UTF-8 text (byte {e.start})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():  # a trailing blank line is an editor's, not a class
        lines.pop()
    ids: list[str] = []
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        fields = line.strip().split(None, 1)
        if len(fields) != 2:
            raise ModelFormatError(f"{path}: line {number}: expected {FORMAT}, got {line.strip()!r}")
        wnid, name = fields
        if wnid in seen:
            first = seen[wnid]
            raise ModelFormatError(f"{path}: line {number}: id {wnid!r} is already class {first} (line {first + 1})")
        seen[wnid] = len(ids)
        ids.append(wnid)
        names.append(name.strip())
    if not ids:
        raise ModelFormatError(f"{path}: labels file is empty; expected {FORMAT}")
    if num_classes is not None and len(ids) != num_classes:
        raise ModelFormatError(f"{path}: {len(ids)} labels for a network with {num_classes} classes; "
                               f"expected one line per class")
    return Labels(tuple(ids), tuple(names))
