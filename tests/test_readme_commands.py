"""The README's commands as a newcomer types them: the cheap ones run on the checkout, every other one names a script,
file or module that exists and only flags its --help lists.

Commands are the lines of the README's indented blocks and its inline code that starts with a venv's path, a script or
sudo; the Python API block runs as a script. A venv's python is this interpreter (the test venv holds the device
stack too); device commands that would not end (a camera, --repeat, --http, --mqtt) run as --check-config, with the
fake picamera2 importable as on a Pi.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO, run_python

README = REPO / "README.md"
FAKES = REPO / "tests" / "fakes"
PYTHONS = (".venv-demo/bin/python", ".venv/bin/python")
EDGE_CLI = ".venv/bin/edge-explainer"
PREFIXES = (*PYTHONS, EDGE_CLI, "./scripts/", "sudo ")
NOT_RUN = ("sudo ", "git clone", "python3 -m venv", ".venv/bin/pip", "pip ")  # a Pi's or a registry's work
ENDLESS = ("--repeat", "--http", "--mqtt", "picamera2", "camera:")  # run as --check-config
CHEAP_TOOLS = ("--list-layers",)  # workstation commands quick enough to run here


def readme_commands(text: str) -> list[str]:
    """Commands in indented blocks (outside ``` fences) and in inline code starting with a known prefix."""
    found: list[str] = []
    fenced = False
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("    ") and (i == 0 or lines[i - 1].strip() == ""
                                                       or lines[i - 1].startswith("    ")):
            command = line.strip().split("  #", 1)[0].strip()
            if command:
                found.append(command)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith(PREFIXES)]
    return [c for c in found if not c.startswith(NOT_RUN) or c.startswith("sudo systemd/")]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def edge_args(command: str) -> list[str] | None:
    """The arguments after `python -m edge` / `edge-explainer`, or None for another command."""
    words = shlex.split(command)
    if words[0] == EDGE_CLI:
        return words[1:]
    if words[0] in PYTHONS and words[1:3] == ["-m", "edge"]:
        return words[3:]
    return None


def flags_exist(module: str, words: list[str], subcommand: list[str]) -> None:
    usage = run_python("-m", module, *subcommand, "--help", timeout=120)
    assert usage.returncode == 0, usage.stderr
    for flag in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        assert re.search(rf"(^|[\s\[]){re.escape(flag)}\b", usage.stdout), f"{module}: no flag {flag} in its --help"


def test_the_readme_has_commands_to_check() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert {"./scripts/demo", "./scripts/test"} <= set(commands)
    assert sum(edge_args(c) is not None for c in commands) >= 4
    assert sum(c.startswith(".venv/bin/python -m tools.") for c in commands) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands(README.read_text(encoding="utf-8")))
def test_a_readme_command_runs_as_written(command: str, tmp_path: Path) -> None:
    words = shlex.split(command)
    if words[0].startswith(("./scripts/", "sudo")):
        script = REPO / words[-1 if words[0] == "sudo" else 0]
        assert script.is_file() and os.access(script, os.X_OK), f"{command}: no such script"
        return
    if (args := edge_args(command)) is not None:
        flags_exist("edge", args, ["run"])
        if any(e in command for e in ENDLESS):
            args = [*args, "--check-config"]
        fakes = os.pathsep.join([str(FAKES), str(REPO)])
        out = tmp_path / "out"
        args = [a.replace("out/", f"{out}/") for a in args]
        if "--model" in args and not (REPO / args[args.index("--model") + 1]).exists():
            return  # a bundle the README's export table makes first: its flags are checked above
        proc = run_python("-m", "edge", *args, timeout=300, env={"PYTHONPATH": fakes})
        assert proc.returncode == 0, f"{command}:\n{proc.stderr[-3000:]}"
        assert "edge: error" not in proc.stderr and "nothing will show" not in proc.stderr, proc.stderr
        return
    assert words[0] in PYTHONS and words[1] == "-m", f"{command}: not a command this test knows"
    module = words[2]
    flags_exist(module, words[3:], [])
    model = words[3]
    if any(flag in words for flag in CHEAP_TOOLS) and ((REPO / model).exists() or ":" in model):
        proc = run_python(*words[1:], timeout=600)
        assert proc.returncode == 0, f"{command}:\n{proc.stderr[-3000:]}"


@pytest.mark.slow
def test_the_python_api_block_runs(tmp_path: Path) -> None:
    (block,) = python_blocks(README.read_text(encoding="utf-8"))
    script = tmp_path / "api.py"
    script.write_text(block)
    proc = run_python(str(script), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] in {"Apfel", "Orange", "Tomate"}


def test_commands_are_found_in_blocks_and_in_inline_code() -> None:
    text = ("Run it:\n\n    ./scripts/demo     # comment\n    .venv/bin/python -m tools.bench --quick\n\n"
            "Then `.venv-demo/bin/python -m edge run --stdout`, not `edge` alone.\n"
            "```sh\n    not a block\n```\n")
    assert readme_commands(text) == ["./scripts/demo", ".venv/bin/python -m tools.bench --quick",
                                     ".venv-demo/bin/python -m edge run --stdout"]
