"""List the ctapipe-sst1m tools and the plugins it adds to ctapipe, one line each."""

import ast
import textwrap
from importlib.metadata import PackageNotFoundError, distribution
from importlib.util import find_spec
from pathlib import Path

import ctapipe
from ctapipe.core import Tool
from ctapipe.image import ImageCleaner

from ..version import __version__

__all__ = ["InfoTool", "first_sentence", "listing", "main", "package_entry_points"]

DISTRIBUTION = "ctapipe-sst1m"
#: entry-point groups of ctapipe's plugins: (group, heading, how they are chosen)
PLUGIN_GROUPS = (
    (
        "ctapipe_io",
        "Event sources",
        "ctapipe-process picks the one that accepts the input file",
    ),
    (
        "ctapipe_monitoring",
        "Monitoring sources",
        "named in ProcessorTool.monitoring_source_list",
    ),
)
LINE_WIDTH = 100


def package_entry_points(group):
    """
    The entry points of the installed ctapipe-sst1m distribution in ``group``.

    Parameters
    ----------
    group : str
        ``console_scripts``, ``ctapipe_io``, ``ctapipe_monitoring``...

    Returns
    -------
    list[importlib.metadata.EntryPoint]
        Sorted by name; empty if the package is not installed (run from a
        source tree).
    """
    try:
        entry_points = distribution(DISTRIBUTION).entry_points
    except PackageNotFoundError:
        return []
    return sorted(entry_points.select(group=group), key=lambda ep: ep.name)


def first_sentence(text):
    """
    The first sentence of the first paragraph of a docstring, on one line.

    Parameters
    ----------
    text : str or None

    Returns
    -------
    str
        ``"(no description)"`` if ``text`` is empty.
    """
    paragraph = " ".join((text or "").strip().split("\n\n")[0].split())
    for end in (". ", "? "):
        head, found, _ = paragraph.partition(end)
        if found:
            paragraph = head + end.strip()
            break
    return paragraph.replace("``", "") or "(no description)"


def _module_docstring(module_name):
    """A module's docstring, read without importing it (tools import a lot)."""
    spec = find_spec(module_name)
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text()))


def _entry(name, description, name_width):
    """``name  description``, the description wrapped under itself."""
    return textwrap.fill(
        description,
        width=LINE_WIDTH,
        initial_indent=f"  {name:<{name_width}}  ",
        subsequent_indent=" " * (name_width + 4),
    )


def _cleaners():
    """The package's image cleaners (no entry point: found once imported)."""
    return sorted(
        (
            c
            for c in ImageCleaner.non_abstract_subclasses().values()
            if c.__module__.startswith("ctapipe_sst1m.")
        ),
        key=lambda c: c.__name__,
    )


def _tools():
    """(name, description) of every console script of the distribution."""
    entries = []
    for entry_point in package_entry_points("console_scripts"):
        module_name = entry_point.value.partition(":")[0]
        description = first_sentence(_module_docstring(module_name))
        # "ctapipe-sst1m-check: is each file..." says its name twice
        prefix = f"{entry_point.name}: "
        if description.startswith(prefix):
            description = description.removeprefix(prefix)
            description = description[:1].upper() + description[1:]
        entries.append((entry_point.name, description))
    return entries


def listing():
    """
    The text ``ctapipe-sst1m-info`` prints: every console script of the
    installed distribution, every plugin it registers with ctapipe, and its
    image cleaners, each with a one-line description.

    Returns
    -------
    list[str]
    """
    sections = [
        (
            "Tools (each has --help; configuration files: ctapipe-sst1m-quickstart):",
            _tools(),
        )
    ]
    for group, heading, chosen in PLUGIN_GROUPS:
        components = [
            (entry_point.name, entry_point.load())
            for entry_point in package_entry_points(group)
        ]
        sections.append(
            (
                f"{heading} ({group} plugins; {chosen}):",
                [(name, first_sentence(c.__doc__)) for name, c in components],
            )
        )
    # loading the plugins above imported the package, and with it its cleaners
    sections.append(
        (
            "Image cleaners (ImageProcessor.image_cleaner_type):",
            [(c.__name__, first_sentence(c.__doc__)) for c in _cleaners()],
        )
    )
    names = [name for _, entries in sections for name, _ in entries]
    name_width = max((len(name) for name in names), default=0)
    lines = [
        f"ctapipe-sst1m {__version__} (ctapipe {ctapipe.__version__}): tools and "
        "plugins for the SST-1M telescopes"
    ]
    for heading, entries in sections:
        lines += ["", heading]
        if not entries:
            lines.append(f"  none: is {DISTRIBUTION} installed? (pip install -e .)")
        lines += [_entry(name, text, name_width) for name, text in entries]
    lines += [
        "",
        "Every option of a component: ctapipe-process --help-all | grep SST1M",
    ]
    return lines


class InfoTool(Tool):
    """
    List the ctapipe-sst1m tools, its event and monitoring sources and its
    image cleaner, with one line on each (``ctapipe-info --tools`` lists only
    ctapipe's own tools).
    """

    name = "ctapipe-sst1m-info"
    description = __doc__
    examples = """
    ctapipe-sst1m-info
    """

    def setup(self):
        pass

    def start(self):
        print("\n".join(listing()))

    def finish(self):
        pass

    def write_provenance(self):
        # a listing reads and writes no file: no provenance log in the
        # user's directory
        pass


def main():
    """Run the info tool."""
    InfoTool().run()
