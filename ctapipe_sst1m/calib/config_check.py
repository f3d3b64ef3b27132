"""
Refusal of impossible configurations at setup, with one line saying what to set.

traitlets ignores a misspelt configuration section, and numbers outside what a
setting means (an empty pedestal window, a negative threshold) only show later
as all-zero images or a traceback deep in numpy. The checks here raise
`ConfigurationError` instead, with a message of the form
``<what/where>: <what is wrong>; <what to set>``:

* `RangedInt` and `RangedFloat`: traits whose bounds are checked by traitlets
  when the configuration is loaded;
* `check_telescope_parameter`: the same for ctapipe's telescope parameters,
  which take no bounds, called from the ``__init__`` of their component;
* `check_config_sections`: configuration sections naming no component.
"""

import difflib
import functools
import importlib
import logging
import math
import numbers
from importlib.metadata import entry_points

from traitlets import Float, Int, TraitError
from traitlets.config import Config, Configurable

__all__ = [
    "ConfigurationError",
    "RangedFloat",
    "RangedInt",
    "check_config_sections",
    "check_telescope_parameter",
    "in_range",
    "out_of_range_message",
]

log = logging.getLogger(__name__)

#: a section name is taken for a misspelling of a component name from this
#: difflib ratio on: one wrong letter in ``SST1MEventSourse`` gives 0.94, while
#: ctapipe's own distinct names reach 0.92 (``MLQualityQuery``/``QualityQuery``)
#: and other pipelines' sources 0.87 (``LSTEventSource``/``SST1MEventSource``)
CLOSE_MATCH = 0.9
#: ctapipe subpackages defining components: imported before the section names
#: are looked up, as ctapipe-process imports them
COMPONENT_PACKAGES = (
    "ctapipe.io",
    "ctapipe.calib",
    "ctapipe.image",
    "ctapipe.reco",
    "ctapipe.monitoring",
    "ctapipe.irf",
)
#: entry-point groups of ctapipe plugins (event sources, reconstructors, ...)
PLUGIN_GROUPS = ("ctapipe_io", "ctapipe_reco", "ctapipe_monitoring")


class ConfigurationError(TraitError, ValueError):
    """
    A configuration that cannot work, refused at setup.

    A `traitlets.TraitError`, so that `ctapipe.core.Tool.run` prints its message
    on one line and exits with status 2, as for any invalid option; a
    `ValueError` for the callers that catch those.
    """


def _bound(value):
    """A bound, None for none: traitlets' Float has infinite ones by default."""
    return None if value is None or math.isinf(value) else value


def _allowed(low, high, low_exclusive=False):
    """The allowed range in words: ``between 1 and 49``, ``at least 0``, ..."""
    low, high = _bound(low), _bound(high)
    low_text = f"greater than {low}" if low_exclusive else f"at least {low}"
    if low is not None and high is not None:
        if low_exclusive:
            return f"{low_text} and at most {high}"
        return f"between {low} and {high}"
    if low is not None:
        return low_text
    return f"at most {high}"


def in_range(value, low, high, low_exclusive=False):
    """
    Whether a number is in a range; NaN never is.

    Parameters
    ----------
    value : int or float
    low, high : int, float or None
        Inclusive bounds, None where there is none.
    low_exclusive : bool
        ``low`` itself is not allowed.

    Returns
    -------
    bool
    """
    if isinstance(value, float) and math.isnan(value):
        return False
    if low is not None and (value <= low if low_exclusive else value < low):
        return False
    return high is None or value <= high


def out_of_range_message(key, value, low, high, low_exclusive=False, where="", why=""):
    """
    The one-line message for a setting outside its range.

    Parameters
    ----------
    key : str
        The configuration key, ``<Class>.<trait>``.
    value : object
        The value given.
    low, high : int, float or None
        Inclusive bounds, None where there is none.
    low_exclusive : bool
        ``low`` itself is not allowed.
    where : str
        Appended to the key and value, e.g. ``" for tel 22"``.
    why : str
        Appended to the range, e.g. ``" (the most neighbours a pixel has)"``.

    Returns
    -------
    str
        ``"<key> = <value><where>: must be <range><why>; set <key> to a value
        <range>"``.
    """
    allowed = _allowed(low, high, low_exclusive)
    return (
        f"{key} = {value!r}{where}: must be {allowed}{why}; "
        f"set {key} to a value {allowed}"
    )


class _RangeMessage:
    """
    Bounds of Int and Float checked with this package's message.

    traitlets' own bound check lets NaN through and words its message around
    the instance, not the configuration key; this one runs first.
    """

    def __init__(self, *args, low_exclusive=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.low_exclusive = low_exclusive
        # --help and the configuration reference show the range
        if self.help and (_bound(self.min) is not None or _bound(self.max) is not None):
            none = " (or None)" if self.allow_none else ""
            allowed = _allowed(self.min, self.max, low_exclusive)
            self.help = f"{self.help.rstrip()} Allowed: {allowed}{none}."

    def validate(self, obj, value):
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if is_number and not in_range(value, self.min, self.max, self.low_exclusive):
            raise ConfigurationError(
                out_of_range_message(
                    f"{type(obj).__name__}.{self.name}",
                    value,
                    self.min,
                    self.max,
                    self.low_exclusive,
                )
            )
        return super().validate(obj, value)

    def info(self):
        if _bound(self.min) is None and _bound(self.max) is None:
            return super().info()
        return f"{super().info()} {_allowed(self.min, self.max, self.low_exclusive)}"


class RangedInt(_RangeMessage, Int):
    """
    A traitlets `~traitlets.Int` whose ``min`` and ``max`` (inclusive) are
    enforced with a `ConfigurationError` naming ``<Class>.<trait>``.

    Raises
    ------
    ConfigurationError
        When a value outside the range is set, e.g. from the configuration.
    """


class RangedFloat(_RangeMessage, Float):
    """
    A traitlets `~traitlets.Float` whose ``min`` and ``max`` (inclusive; ``min``
    exclusive with ``low_exclusive=True``) are enforced with a
    `ConfigurationError` naming ``<Class>.<trait>``; NaN is refused.

    Raises
    ------
    ConfigurationError
        When a value outside the range is set, e.g. from the configuration.
    """


def _pattern_text(command, argument):
    """Which telescopes an entry of a telescope parameter is for."""
    if command == "id":
        return f" for tel {argument}"
    if argument == "*":
        return ""
    return f" for telescope type {argument}"


def check_telescope_parameter(
    component, name, low=None, high=None, *, low_exclusive=False, why=""
):
    """
    Check every value of a ctapipe telescope parameter against a range.

    ctapipe's ``IntTelescopeParameter`` and ``FloatTelescopeParameter`` accept
    no bounds, so their components call this from ``__init__``. All the entries
    are checked (``[["type", "*", 2], ["id", 22, 9]]``), also those for
    telescopes that are not in the subarray.

    Parameters
    ----------
    component : ctapipe.core.TelescopeComponent
    name : str
        Name of the telescope parameter.
    low, high : int, float or None
        Inclusive bounds, None where there is none.
    low_exclusive : bool
        ``low`` itself is not allowed.
    why : str
        Reason of the range, appended to it in the message.

    Raises
    ------
    ConfigurationError
        For the first value out of the range, naming ``<Class>.<name>`` and the
        telescopes of the entry.
    """
    for command, argument, value in getattr(component, name):
        if not in_range(value, low, high, low_exclusive):
            raise ConfigurationError(
                out_of_range_message(
                    f"{type(component).__name__}.{name}",
                    value,
                    low,
                    high,
                    low_exclusive,
                    where=_pattern_text(command, argument),
                    why=why,
                )
            )


def _import_process_tool():
    try:
        importlib.import_module("ctapipe.tools.process")
    except Exception as err:  # any failure: every module is imported below
        log.debug("cannot import ctapipe.tools.process: %s", err)


@functools.cache
def _import_components():
    """
    Import the modules that define the components a configuration may name.

    Configurable classes only exist once their module is imported: ctapipe's
    component subpackages, the plugins of ctapipe's entry points and the modules
    of the ``ctapipe*`` command-line tools (whose classes are sections too, e.g.
    ``ProcessorTool``). A module that fails to import is skipped: its classes
    are then reported as unknown, which only warns unless a known name is close.
    """
    from ctapipe.core.plugins import detect_and_import_plugins

    modules = list(COMPONENT_PACKAGES)
    modules += [
        entry_point.module
        for entry_point in entry_points(group="console_scripts")
        if entry_point.module.split(".")[0].startswith("ctapipe")
    ]
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as err:  # an optional dependency may be missing
            log.debug("cannot import %s to list its components: %s", module, err)
    for group in PLUGIN_GROUPS:
        detect_and_import_plugins(group)


def _configurable_names():
    """Names of all imported `traitlets.config.Configurable` subclasses."""
    names, pending = set(), [Configurable]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass.__name__ not in names:
                names.add(subclass.__name__)
                pending.append(subclass)
    return names


def _unknown_sections(config, names, prefix=""):
    """(path, key) of the sections of ``config`` that name no class, at any depth."""
    unknown = []
    for key, value in config.items():
        nested = isinstance(value, dict)
        # below the top level, lower-case keys are traits (traitlets warns about
        # unknown ones) and their dict values are not sections
        if prefix and not (key[:1].isupper() and nested):
            continue
        if key not in names:
            unknown.append((prefix + key, key))
        elif nested:
            unknown += _unknown_sections(value, names, f"{prefix}{key}.")
    return unknown


def _close_match(key, names):
    """The component name ``key`` is most likely a misspelling of, or None."""
    by_lower = {name.lower(): name for name in names}
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    matches = difflib.get_close_matches(key, names, n=1, cutoff=CLOSE_MATCH)
    return matches[0] if matches else None


def check_config_sections(config: Config) -> list[str]:
    """
    Refuse configuration sections that are misspelt component names.

    traitlets silently ignores a section whose name is no class: a config with
    ``SST1MEventSourse:`` runs with the defaults of ``SST1MEventSource``. Every
    top-level key of ``config``, and every capitalised key nested in a section
    (traitlets reads ``SST1MEventSource: {SST1MR1Calibrator: ...}`` as a nested
    section), is compared with the names of all the subclasses of
    `traitlets.config.Configurable`; if some are unknown, again after importing
    ctapipe's component subpackages, its plugins and the modules of the
    ``ctapipe*`` tools.

    A name equal to a component name but for letter case, or closer to one than
    a difflib ratio of `CLOSE_MATCH` (0.9), is a misspelling and refused. Other
    unknown names only give a warning: they may be components of a package that
    is not installed (e.g. lstchain's ``LSTEventSource`` in a shared config).

    Parameters
    ----------
    config : traitlets.config.Config
        The configuration, e.g. ``self.config`` of a component.

    Returns
    -------
    list of str
        The unknown sections that were only warned about (``Parent.Child`` for
        nested ones), empty if all sections name components.

    Raises
    ------
    ConfigurationError
        ``config section 'SST1MEventSourse' matches no component; did you mean
        'SST1MEventSource'?``, one sentence per misspelt section, on one line.
    """
    names = _configurable_names()
    if list(_unknown_sections(config, names)):
        # the sections of ctapipe-process's configurations (ProcessorTool,
        # DataWriter...) when the source is used without the tool: 0.3 s
        _import_process_tool()
        names = _configurable_names()
    if list(_unknown_sections(config, names)):
        # only then pay for importing every component module and tool (1.1 s,
        # matplotlib among them): the usual config names classes imported
        _import_components()
        names = _configurable_names()
    misspelt, unknown = [], []
    for path, key in _unknown_sections(config, names):
        match = _close_match(key, names)
        if match is None:
            unknown.append(path)
        else:
            misspelt.append(
                f"config section '{path}' matches no component; did you mean '{match}'?"
            )
    if misspelt:
        raise ConfigurationError(" ".join(misspelt))
    for path in unknown:
        log.warning(
            "config section '%s' matches no component and is ignored; check its "
            "spelling, or install the package that defines it",
            path,
        )
    return unknown
