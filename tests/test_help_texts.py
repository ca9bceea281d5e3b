"""Every option of the commands a user types says what it does in --help (argparse shows an option without help as
a bare name): `edge run`, tools.export and tools.verify. The parsers are read in a subprocess (tools.export imports
TensorFlow)."""

from __future__ import annotations

import pytest
from conftest import run_python

CHECK = """
import argparse, sys
from edge.service.cli_args import build_parser
from tools.export.exporter import _parser as export_parser
from tools.verify.verifier import _parser as verify_parser

run = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
bare = [f"{name}: {action.option_strings or action.dest}" for name, parser in
        (("edge run", run), ("tools.export", export_parser()), ("tools.verify", verify_parser()))
        for action in parser._actions if not action.help]
print("\\n".join(bare))
"""


@pytest.mark.slow
def test_every_option_has_help() -> None:
    proc = run_python("-c", CHECK, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "", f"options without help:\n{proc.stdout}"
