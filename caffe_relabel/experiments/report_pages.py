"""The report's records and its two pages: ``report.md`` and a self-contained ``report.html``.

:mod:`caffe_relabel.experiments.report` runs the experiments and fills a
:class:`ReportResult`; :func:`write_pages` writes it (each page atomically:
an interrupted report leaves the previous page or none, never half of one).
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from caffe_relabel.files.atomic_write import write_text
from caffe_relabel.experiments.provenance import Provenance

#: The paper's network; a report on anything else says so in its header.
PAPER_MODEL = "bvlc_googlenet"


@dataclass(frozen=True)
class Claim:
    """One row of the table."""

    claim: str
    paper: str
    ours: str
    model_data: str
    command: str
    deviations: tuple[str, ...] = ()  # where this row's setting is not the paper's; empty: the paper's own


@dataclass(frozen=True)
class Figure:
    """A figure file and the caption that says which paper figure it reproduces."""

    path: Path
    caption: str


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    provenance: Provenance
    claims: list[Claim] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # experiment -> why not run


_SIZE_TEXT = {"quick": "quick settings (scaled down to minutes on a CPU)",
              "full": "full settings (over a thousand relabellings for an ImageNet model)",
              "paper": "the paper's settings"}


def _setting(c: Claim) -> str:
    return "the paper's" if not c.deviations else "NOT the paper's: " + "; ".join(c.deviations)


def write_pages(result: ReportResult, model: str, size: str, sources: "Optional[str | os.PathLike[str]]") -> None:
    """Write ``result.markdown`` and ``result.html`` for a report on ``model`` at ``size`` over ``sources``."""
    title = f"Confusing deep convolution networks by relabelling: reproduction on {model}"
    prov = result.provenance.rows()
    general = [f"Settings: {_SIZE_TEXT[size]}. Every measured number: estimate [95% interval] (n): Wilson for "
               "rates, a seeded BCa bootstrap for means."]
    if any(not m.startswith(PAPER_MODEL) for m in model.split(", ")):
        general.append(f"Every row departs from the paper in its network ({model}; paper: BVLC GoogLeNet)"
                       + (" and its data (the offline photo set; paper: ImageNet validation images)."
                          if sources is None else f" (data: {sources})."))
    header = ["claim", "paper", "ours", "setting", "model and data", "command"]
    rows = [[c.claim, c.paper, c.ours, _setting(c), c.model_data, f"`{c.command}`"] for c in result.claims]
    md = [f"# {title}", ""] + [f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in prov] + [""]
    md += general + ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    if result.skipped:
        md += ["", "## Not run", ""] + [f"- {k}: {v}" for k, v in result.skipped.items()]
    md += ["", "## Figures", ""]
    for i, f in enumerate(result.figures, 1):
        md += [f"![Figure {i}: {f.path.stem}]({f.path.name})", "", f"*{f.path.name}*: {f.caption}", ""]
    write_text(result.markdown, "\n".join(md) + "\n", "report")

    esc = html.escape
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{'<code>' + esc(v) + '</code>' if k == 'command' else esc(v)}</dd>"
                 for k, v in prov)
    cells = "".join(
        f"<tr{' class=off' if c.deviations else ''}>" + "".join(f"<td>{esc(x.strip('`'))}</td>" for x in row) + "</tr>"
        for c, row in zip(result.claims, rows))
    skipped = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in result.skipped.items())
    index = "".join(f'<li><a href="#fig{i}">{esc(f.path.name)}</a>: {esc(f.caption)}</li>'
                    for i, f in enumerate(result.figures, 1))
    figs = "".join(f'<figure id="fig{i}"><img src="{_data_uri(f.path)}" alt="{esc(f.path.stem)}">'
                   f"<figcaption><b>{esc(f.path.name)}</b>: {esc(f.caption)}</figcaption></figure>"
                   for i, f in enumerate(result.figures, 1))
    write_text(result.html,
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #aaa;padding:4px;vertical-align:top;font-size:85%}tr.off td:nth-child(4){color:#a40}"
        "td:last-child{font-family:monospace;font-size:75%;word-break:break-all}"
        "dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dt{font-weight:bold}dd{margin:0}"
        "img{max-width:100%}figure{margin:1.5em 0;border-top:1px solid #ddd}</style></head>"
        f"<body><h1>{esc(title)}</h1><dl>{dl}</dl>" + "".join(f"<p>{esc(g)}</p>" for g in general) + "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in header) + f"</tr>{cells}</table>"
        + (f"<h2>Not run</h2><ul>{skipped}</ul>" if skipped else "")
        + f"<h2>Figures</h2><ol>{index}</ol>{figs}</body></html>\n", "report")


def _data_uri(path: Path) -> str:
    """The file as a data: URI, so the HTML needs nothing beside it."""
    kind = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
    return f"data:{kind.get(path.suffix.lower(), 'application/octet-stream')};base64," \
           + base64.b64encode(path.read_bytes()).decode("ascii")
