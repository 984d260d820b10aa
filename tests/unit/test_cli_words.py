"""Words a user reads: every option of every command has help, and every option that takes a
value says its default; no help text speaks of documents the user never saw ("seed 000")."""

from __future__ import annotations

import argparse
import re

from devicebench.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "devicebench"):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _options():  # type: ignore[no-untyped-def]
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            yield path, action


def test_every_option_has_help_and_every_value_option_says_its_default() -> None:
    missing_help, missing_default = [], []
    for path, action in _options():
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            missing_help.append(f"{path} {name}")
            continue
        takes_value = action.option_strings and action.nargs != 0 and not action.required
        if takes_value and "default" not in action.help.lower():
            missing_default.append(f"{path} {name}: {action.help}")
    assert not missing_help, "options without help:\n" + "\n".join(missing_help)
    assert not missing_default, "options that do not say their default:\n" + "\n".join(missing_default)


def test_a_stated_default_is_the_real_one() -> None:
    """Where help says ``default N`` for a number, the parser's default is N."""
    wrong = []
    for path, action in _options():
        match = re.search(r"default:? (-?\d+(?:\.\d+)?)\b", action.help or "")
        number = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
        if match and number and float(match.group(1)) != float(action.default):
            wrong.append(f"{path} {action.option_strings}: help says {match.group(1)}, default is {action.default}")
    assert not wrong, "\n".join(wrong)


def test_help_speaks_of_the_question_not_of_seed_documents() -> None:
    texts = [parser.format_help() for _, parser in _parsers(build_parser())]
    for text in texts:
        assert not re.search(r"seed 0\d\d", text, re.IGNORECASE), text
