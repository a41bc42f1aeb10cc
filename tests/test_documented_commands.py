"""Every `foryou ...` command line that README.md and docs/ show parses, as far as argument parsing goes.

The lines are read from the fenced code blocks and inline code of the documents themselves, so a command
that the documents show but the CLI no longer accepts (or never did) fails here. Inline code counts when it
is a whole command template. Placeholders in capitals (LOG, CKPT, ...) take a sample value, `a|b` expands to
each alternative and `[...]` optional parts are tried both left out and put in.
"""

import argparse
import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from foryou import cli

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_INLINE = re.compile(r"`(foryou [^`]+)`")
_OPTIONAL = re.compile(r"\[([^\[\]]+)\]")


class _Parsed(Exception):
    """Raised by the patched parser once a command line has parsed: nothing past parsing runs."""


def _documented_lines() -> set[str]:
    lines: set[str] = set()
    for document in DOCUMENTS:
        in_code = False
        for line in document.read_text().splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code and line.strip().startswith("foryou "):
                lines.add(line.split("#", 1)[0].strip())
            # Inline code counts when it is a whole command template (it names a placeholder), not a mention.
            lines.update(match.strip() for match in _INLINE.findall(line) if re.search(r"\b[A-Z]{2,}\b", match))
    return lines


def _placeholder(token: str) -> str:
    if token.isupper() and token.isalpha():
        return "x.jsonl" if token in {"LOG", "FILE", "DATA"} else "x"
    return token


def _expansions(line: str) -> Iterator[list[str]]:
    optional = _OPTIONAL.findall(line)
    bare = _OPTIONAL.sub("{}", line)
    for chosen in itertools.product([False, True], repeat=len(optional)):
        text = bare.format(*(part if keep else "" for part, keep in zip(optional, chosen, strict=True)))
        tokens = shlex.split(text)[1:]
        alternatives = [token.split("|") if "|" in token and not token.startswith("-") else [token]
                        for token in tokens]
        for combination in itertools.product(*alternatives):
            yield [_placeholder(token) for token in combination]


def _cases() -> list[tuple[str, list[str]]]:
    return [(line, argv) for line in sorted(_documented_lines()) for argv in _expansions(line) if argv]


def test_the_documents_show_commands() -> None:
    commands = {argv[0] for _, argv in _cases()}
    assert {"kafka", "worker", "train", "eval", "higgs", "world", "demo", "request", "produce"} <= commands


@pytest.mark.parametrize(("line", "argv"), _cases(), ids=lambda value: " ".join(value) if isinstance(value, list)
                         else None)
def test_documented_command_parses(line: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    original = argparse.ArgumentParser.parse_known_args

    def parse_then_stop(self: argparse.ArgumentParser, args: list[str] | None = None,
                        namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = original(self, args, namespace)
        if rest:
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        raise _Parsed(parsed)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_then_stop)
    try:
        cli.main(argv)
    except _Parsed:
        return
    except SystemExit as exc:
        if exc.code == 0 and "--help" in argv:
            return
        pytest.fail(f"`{line}` as `foryou {' '.join(argv)}` does not parse (exit {exc.code})")
    pytest.fail(f"`foryou {' '.join(argv)}` ran without parsing any arguments")


@pytest.mark.parametrize("command", ["-h", "--help", *(f"{name} --help" for name in cli.DELEGATED)])
def test_help_reaches_every_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(command.split())
    assert exited.value.code == 0
    assert "usage: foryou" in capsys.readouterr().out
