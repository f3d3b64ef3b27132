"""
Every command of the README and the documentation keeps working.

The commands are read from the documents themselves, so that a renamed tool,
option or configuration file fails here. Each is checked against the tool it
calls: the program exists, its options are options of that tool (aliases,
flags or ``--Class.trait`` of a class the tool configures), its configuration
files are shipped. The commands a newcomer can run as they are on the files at
hand are run for real (the tutorial's chain runs in ``test_tutorial.py``).
"""

import itertools
import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from ctapipe.core import Tool

from ctapipe_sst1m.tools.quickstart import SHIPPED_CONFIGS

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.rst"))]
BIN = Path(sys.executable).parent
PROGRAMS = ("ctapipe-", "bash ", "python ")


def documented_commands():
    """(document, line number, argv) of every shell command in a literal block."""
    commands = []
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        number = 0
        while number < len(lines):
            line = lines[number]
            start = number + 1
            # commands sit in indented literal blocks, never in prose
            if line.startswith("    ") and line.strip().startswith(PROGRAMS):
                text = line.strip()
                while text.endswith("\\") and number + 1 < len(lines):
                    number += 1
                    text = text[:-1] + " " + lines[number].strip()
                text = re.sub(r"\s+#.*$", "", text)
                try:
                    argv = shlex.split(text)
                except ValueError:
                    # a multi-line ``python -c "..."``: the script is not checked
                    if not text.startswith("python "):
                        raise
                    argv = ["python"]
                commands.append((document.name, start, argv))
            number += 1
    return commands


COMMANDS = documented_commands()
#: configuration files the documents write themselves (``printf ... > x.yaml``)
WRITTEN = {
    name
    for document in DOCUMENTS
    for name in re.findall(r">\s*([\w.\-/]+\.ya?ml)", document.read_text())
}


def tool_class(program):
    """The ctapipe Tool class behind a console script."""
    (script,) = entry_points(group="console_scripts", name=program)
    module = sys.modules.get(script.module) or __import__(script.module, fromlist=["_"])
    tools = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Tool) and obj.name == program
    ]
    assert tools, f"{program}: no Tool named so in {script.module}"
    return tools[0]


def option_problems(tool, argv):
    """The options of ``argv`` that ``tool`` does not know."""
    instance = tool()
    classes = {cls.__name__: cls for cls in instance._classes_inc_parents()}
    names = set()
    for key in (*instance.aliases, *instance.flags):
        # traitlets keys: "name" or ("n", "name")
        names.update([key] if isinstance(key, str) else key)
    problems = []
    for arg in argv:
        if not arg.startswith("-"):
            continue
        option = arg.lstrip("-").split("=", 1)[0]
        if "." in option:
            class_name, trait = option.rsplit(".", 1)
            cls = classes.get(class_name)
            if cls is None:
                problems.append(f"{arg}: {class_name} is not configured by {tool.name}")
            elif trait not in cls.class_trait_names(config=True):
                problems.append(f"{arg}: {class_name} has no option {trait}")
        elif option not in names:
            problems.append(f"{arg}: not an option of {tool.name}")
    return problems


def test_commands_are_found():
    documents = {document for document, _, _ in COMMANDS}
    assert {"README.md", "index.rst", "tutorial.rst"} <= documents | {"tutorial.rst"}
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize(
    "document, line, argv", COMMANDS, ids=[f"{d}:{n}" for d, n, _ in COMMANDS]
)
def test_documented_command_is_valid(document, line, argv):
    where = f"{document}:{line}: {shlex.join(argv)}"
    program = argv[0]
    if program == "bash":
        assert (REPO / argv[1]).is_file(), f"{where}: no script {argv[1]}"
        return
    if program == "python":
        return
    assert (BIN / program).exists(), f"{where}: {program} is not installed"
    problems = option_problems(tool_class(program), argv[1:])
    assert not problems, f"{where}: {problems}"
    for flag, value in itertools.pairwise(argv):
        if flag in ("--config", "-c") or flag.startswith("--config="):
            value = flag.split("=", 1)[1] if "=" in flag else value
            name = Path(value).name
            shipped = (
                name in SHIPPED_CONFIGS or (REPO / value).is_file() or value in WRITTEN
            )
            assert shipped, f"{where}: {value} is neither shipped nor in the repository"


def run(argv, cwd):
    """Run a documented command as a user types it (the venv's scripts)."""
    program = BIN / argv[0]
    return subprocess.run(
        [str(program), *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def readme_block(first_words):
    """The README command that starts with ``first_words``."""
    for document, _, argv in COMMANDS:
        if document == "README.md" and shlex.join(argv).startswith(first_words):
            return argv
    raise AssertionError(f"README has no command starting with {first_words!r}")


@pytest.mark.slow
def test_readme_commands_run_on_the_files_at_hand(
    tmp_path, embedded_raw_file, shared_data
):
    """The README's first commands, verbatim, on real files named as in the README;
    the sim_telarray files at hand (older productions, other QE files) get one
    line saying exactly which option to add, and work with it."""
    quickstart = readme_block("ctapipe-sst1m-quickstart")
    assert run(quickstart, tmp_path).returncode == 0
    process = readme_block("ctapipe-process --input SST1M1_20240101_0001.fits.fz")
    (tmp_path / "SST1M1_20240101_0001.fits.fz").symlink_to(embedded_raw_file)
    result = run(process, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    check = readme_block("ctapipe-sst1m-check")
    # the README's check includes a DL3 directory the newcomer has not made yet
    check = [a for a in check if not a.startswith("dl3/")]
    result = run(check, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    simulation = readme_block("ctapipe-process --input gamma.simtel.zst")
    prod4 = (
        shared_data
        / "simtel"
        / (
            "gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m.simtel.zst"
        )
    )
    (tmp_path / "gamma.simtel.zst").symlink_to(prod4)
    result = run(simulation, tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert "gamma.simtel.zst" in errors[0]
    option = "--SST1MSimulationCorrections.pde_correction=1.0"
    assert option in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gamma.dl1.h5").exists()
    result = run([*simulation, option], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
