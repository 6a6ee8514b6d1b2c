"""Every option of every command says what it does and what it is when not given."""

from __future__ import annotations

import argparse

from caffe_relabel.cli.main import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "caffe-relabel"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _missing(parser: argparse.ArgumentParser) -> list[str]:
    """The options of ``parser`` without help, or (taking a value) without their default in it."""
    bad = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        flag = "/".join(action.option_strings) or action.dest
        text = action.help or ""
        if not text.strip():
            bad.append(f"{flag}: no help")
        elif action.option_strings and action.nargs != 0 and "default" not in text:
            bad.append(f"{flag}: help does not state the default")
    return bad


def test_every_option_has_help_stating_its_default():
    bad = [f"{name} {problem}" for name, parser in _parsers(build_parser()) for problem in _missing(parser)]
    assert bad == []


def test_the_walk_finds_every_command_and_would_catch_a_bare_option():
    names = {name for name, _ in _parsers(build_parser())}
    assert {"caffe-relabel classify", "caffe-relabel relabel", "caffe-relabel experiment sweep",
            "caffe-relabel experiment svm", "caffe-relabel report", "caffe-relabel models"} <= names
    probe = argparse.ArgumentParser()
    probe.add_argument("--bare", type=int, default=3)
    probe.add_argument("--silent", help="says nothing of 3", default=3)
    probe.add_argument("--flag", action="store_true", help="a switch")
    assert _missing(probe) == ["--bare: no help", "--silent: help does not state the default"]
