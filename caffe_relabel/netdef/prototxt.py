"""Patching Caffe net definitions (prototxt text) so gradients reach the input.

Caffe only back-propagates into a blob when some layer needs it; the data
layer never does, so a deploy net computes no input gradient unless the net
sets ``force_backward: true``. :func:`force_backward` edits the text and
changes nothing else: comments, order and formatting survive.
"""

from __future__ import annotations

import re


def _top_level_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` at brace depth 0, outside comments and strings."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            if depth == 0:
                spans.append((start, i))
                start = j
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "{<":
            if depth == 0:
                spans.append((start, i))
            depth += 1
        elif c in "}>" and depth > 0:  # a stray closer in broken text is ignored
            depth -= 1
            if depth == 0:
                start = i + 1
        i += 1
    if depth == 0:
        spans.append((start, n))
    return spans


# What matters for the depth of a brace: comments, quoted strings (braces inside are text), braces, words.
_TOKEN = re.compile(r"#[^\n]*|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[{}<>]|[A-Za-z_]\w*")


def count_layers(text: str) -> int:
    """How many top-level ``layer`` / ``layers`` blocks ``text`` holds, without parsing it.

    A regular-expression scan (seconds for a 50 MB file, where protobuf's text parser takes
    tens): a limit on the layer count is then applied before the parse.
    """
    depth, count, word = 0, 0, ""
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token in ("{", "<"):
            if depth == 0 and word in ("layer", "layers"):
                count += 1
            depth += 1
        elif token in ("}", ">"):
            depth = max(depth - 1, 0)
            word = ""  # a block's own name does not carry over to the next
        elif depth == 0 and token[0] not in "#\"'":
            word = token
    return count


def force_backward(text: str) -> str:
    """Return ``text`` with a top-level ``force_backward: true``.

    An existing top-level ``force_backward`` field is set to ``true`` in
    place; otherwise the field is added after the net's ``name`` (or first,
    if the net has no name). Nested occurrences (inside a layer) are left
    alone, as is everything else in the text.
    """
    for begin, end in _top_level_spans(text):
        m = re.search(r"(?m)^\s*force_backward\s*:\s*(\w+)", text[begin:end])
        if m:
            value_start = begin + m.start(1)
            value_end = begin + m.end(1)
            if text[value_start:value_end] == "true":
                return text
            return text[:value_start] + "true" + text[value_end:]
    for begin, end in _top_level_spans(text):
        m = re.search(r"(?m)^[ \t]*name\s*:\s*(\"[^\"\n]*\"|'[^'\n]*')[^\n]*\n?", text[begin:end])
        if m:
            at = begin + m.end()
            line = m.group(0)
            newline = "" if line.endswith("\n") else "\n"
            return text[:at] + newline + "force_backward: true\n" + text[at:]
    return "force_backward: true\n" + text
