"""
IRFs at a run's zenith angle from a library of IRF nodes: the files of
``ctapipe-sst1m-compute-irf`` at two simulated zenith angles, interpolated in
cos(zenith) with pyirf's estimators.

The rule (`choose_nodes`), for a target zenith angle (and optionally an azimuth
and an NSB label):

1. Only nodes of one azimuth and one NSB label are combined: the NSB label
   given (or the only one of the library), and among its nodes the azimuth
   nearest to the target's (or the only one). Only the zenith angle is
   interpolated: with two telescopes the acceptance also depends on the azimuth
   relative to their baseline (see `ctapipe_sst1m.dl3.irf_node`), and NSB
   labels are not numbers.
2. A node within `ZENITH_TOLERANCE` (0.5 deg) of the target is taken as it is:
   over 0.5 deg an effective area scaling as 1 / cos(zenith) changes by
   tan(zenith) * 0.5 deg, under 1 % up to zenith 50 deg, less than the
   statistical errors of the IRFs, and the node's IRFs are not resampled by
   the quantile interpolation.
3. Otherwise the two nodes whose zenith angles bracket the target, the nearest
   below and the nearest above, are interpolated linearly in cos(zenith):
   node a gets the weight (cos z - cos z_b) / (cos z_a - cos z_b). With
   pyirf's estimators: the effective area in log (`EffectiveAreaEstimator`),
   the energy dispersion by moment morphing (`EnergyDispersionEstimator` with
   `MomentMorphInterpolator`: pyirf's default quantile interpolation shifts
   the coarse migration histograms of ``sst1m_irf.yaml`` by up to a bin), the
   PSF by its quantiles (`PSFTableEstimator`, fine bins), RAD_MAX and the
   background rate linearly (`RadMaxEstimator`; pyirf 0.15 has no background
   estimator: its `ParametrizedComponentEstimator`).
4. A target outside the nodes' zenith range, or a library with one node at
   that azimuth and NSB: no interpolation (nor extrapolation): the nearest
   node, as it is, with the reason.

The IRF file written has the HDU layout and header cards of the nodes', the
interpolated node's pointing in the `IrfNode` cards (zenith: the target's;
azimuth, NSB and field of view: the nodes'), and its sources in the primary
header: ``INTERPOL`` (interpolated or not), ``SRCIRF1``/``SRCIRF2`` (files),
``SRCZEN1``/``SRCZEN2`` (their zenith angles), ``SRCWGT1``/``SRCWGT2``
(weights) and ``NODERULE`` (why these nodes). It is written by
`write_fits_product`: checksummed, marked complete, renamed when complete.
"""

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from pyirf.interpolation import (
    EffectiveAreaEstimator,
    EnergyDispersionEstimator,
    MomentMorphInterpolator,
    ParametrizedComponentEstimator,
    PSFTableEstimator,
    RadMaxEstimator,
)

from ..core.products import IRF, nan_columns, verify_fits_product, write_fits_product
from .irf_node import SAME_NODE, IrfNode, pointing_differences

__all__ = [
    "IRF_VALUE_COLUMNS",
    "MIN_EFFECTIVE_AREA",
    "ZENITH_TOLERANCE",
    "IrfInterpolationError",
    "NodeChoice",
    "choose_nodes",
    "cos_zenith_weights",
    "energy_thresholds",
    "interpolate_hdus",
    "irf_at_zenith",
    "read_irf_node",
    "write_irf_at_zenith",
]

#: a node closer than this to the target zenith (deg) is taken as it is
ZENITH_TOLERANCE = 0.5
#: effective areas (m2) below this are 0 (pyirf's floor of the log interpolation)
MIN_EFFECTIVE_AREA = 1.0
#: GADF IRF class (HDUCLAS4) -> the column interpolated; every other column of
#: the HDU is an axis, which must be the same in all nodes
IRF_VALUE_COLUMNS = {
    "AEFF_2D": "EFFAREA",
    "EDISP_2D": "MATRIX",
    "PSF_TABLE": "RPSF",
    "RAD_MAX_2D": "RAD_MAX",
    "BKG_2D": "BKG",
}
#: primary-header cards that must be the same in the nodes combined
SAME_CARDS = ("TELLIST", "ENERGREC", "GEOMREC", "GHCLASS", "FOVMAX")


class IrfInterpolationError(ValueError):
    """IRF nodes that cannot make the IRFs asked for; the message says why."""


@dataclass(frozen=True)
class NodeChoice:
    """
    The nodes that make the IRFs at a target zenith angle.

    Attributes
    ----------
    indices : tuple of int
        Into the nodes given to `choose_nodes`: two if interpolated, else one.
    weights : tuple of float
        Of each node (they sum to 1).
    zenith : float
        Zenith angle (deg) of the IRFs made: the target if interpolated, the
        node's otherwise.
    reason : str
        Why these nodes, in one sentence.
    off_target : bool
        Whether the IRFs are those of a node farther from the target than the
        tolerance (the target is outside the nodes' range, or there is one
        node): worth a warning.
    """

    indices: tuple
    weights: tuple
    zenith: float
    reason: str
    off_target: bool = False

    @property
    def interpolated(self):
        """Whether two nodes are interpolated."""
        return len(self.indices) == 2


def cos_zenith_weights(zenith_a, zenith_b, zenith):
    """
    Weights of two nodes interpolated linearly in cos(zenith).

    Parameters
    ----------
    zenith_a, zenith_b : float
        The nodes' zenith angles (deg), different.
    zenith : float
        The target's (deg).

    Returns
    -------
    weight_a, weight_b : float
        They sum to 1; both in [0, 1] when the nodes bracket the target.

    Raises
    ------
    IrfInterpolationError
        If the nodes have the same zenith angle.
    """
    cos_a, cos_b, cos_t = np.cos(np.radians([zenith_a, zenith_b, zenith]))
    if np.isclose(cos_a, cos_b, rtol=0, atol=1e-12):
        raise IrfInterpolationError(
            f"nodes at the same zenith angle ({zenith_a} and {zenith_b} deg): "
            "nothing to interpolate between"
        )
    weight_a = float((cos_t - cos_b) / (cos_a - cos_b))
    return weight_a, 1.0 - weight_a


def _group(nodes, azimuth, nsb):
    """Indices of the nodes of one NSB label and azimuth; its description."""
    labels = sorted({node.nsb for node in nodes})
    if nsb is None:
        if len(labels) > 1:
            raise IrfInterpolationError(
                f"IRF nodes of NSB {', '.join(labels)}: say which (nsb)"
            )
        nsb = labels[0]
    elif nsb not in labels:
        raise IrfInterpolationError(
            f"no IRF node of NSB {nsb!r} (the nodes': {', '.join(labels)}); "
            "give the IRFs of that NSB"
        )
    same_nsb = [i for i, node in enumerate(nodes) if node.nsb == nsb]
    node_az = np.array([nodes[i].az for i in same_nsb])

    def offset(az, reference):
        return pointing_differences(0.0, az, 0.0, reference)[1]

    # azimuth nodes: the distinct azimuths, within SAME_NODE of each other
    distinct = []
    for az in node_az:
        if all(offset(az, other) > SAME_NODE for other in distinct):
            distinct.append(float(az))
    if azimuth is None:
        if len(distinct) > 1:
            raise IrfInterpolationError(
                f"IRF nodes at azimuths {', '.join(f'{a:g}' for a in distinct)} "
                "deg: say which (azimuth)"
            )
        chosen = distinct[0]
    else:
        chosen = distinct[int(np.argmin(offset(np.array(distinct), azimuth)))]
    group = [
        i
        for i, az in zip(same_nsb, node_az, strict=True)
        if offset(az, chosen) <= SAME_NODE
    ]
    return group, f"az {chosen:g} deg, NSB {nsb}"


def choose_nodes(nodes, zenith, azimuth=None, nsb=None, tolerance=ZENITH_TOLERANCE):
    """
    The nodes that make the IRFs at ``zenith``, by the rule of the module
    docstring.

    Parameters
    ----------
    nodes : sequence of IrfNode
        The library (any order).
    zenith : float
        Target zenith angle (deg).
    azimuth : float, optional
        Target azimuth (deg): the nodes' azimuth nearest to it is used. Needed
        if the nodes are at several azimuths.
    nsb : str, optional
        NSB label of the nodes to use. Needed if the nodes have several.
    tolerance : float
        A node closer than this to ``zenith`` (deg) is taken as it is.

    Returns
    -------
    NodeChoice

    Raises
    ------
    IrfInterpolationError
        If there are no nodes, if the azimuth or NSB are needed and not given or
        the NSB is not the nodes', or if two nodes are at the same pointing and
        NSB.
    """
    nodes = list(nodes)
    if not nodes:
        raise IrfInterpolationError("no IRF nodes given")
    if not 0 <= zenith < 90:
        raise IrfInterpolationError(f"zenith angle {zenith} deg: not in [0, 90)")
    group, where = _group(nodes, azimuth, nsb)
    group.sort(key=lambda i: nodes[i].zenith)
    zeniths = np.array([nodes[i].zenith for i in group])
    twins = np.flatnonzero(np.diff(zeniths) <= SAME_NODE)
    if len(twins):
        raise IrfInterpolationError(
            f"two IRF nodes at zenith {zeniths[twins[0]]:g} deg, {where} (nodes "
            f"{group[twins[0]]} and {group[twins[0] + 1]}): which is meant? give "
            "one IRF file per node"
        )
    distance = np.abs(zeniths - zenith)
    nearest = int(np.argmin(distance))
    nearest_zenith = float(zeniths[nearest])
    if distance[nearest] <= tolerance:
        return NodeChoice(
            (group[nearest],),
            (1.0,),
            nearest_zenith,
            f"the node at zenith {nearest_zenith:g} deg ({where}) is within "
            f"{tolerance:g} deg of zenith {zenith:g} deg: taken as it is",
        )
    below = np.flatnonzero(zeniths < zenith)
    above = np.flatnonzero(zeniths > zenith)
    if len(below) == 0 or len(above) == 0:
        if len(group) == 1:
            why = f"the only node at {where} is at zenith {nearest_zenith:g} deg"
        else:
            side = "smallest" if len(below) == 0 else "largest"
            why = (
                f"zenith {zenith:g} deg is outside the nodes' range at {where} "
                f"({zeniths[0]:g}-{zeniths[-1]:g} deg)"
            )
            why += f"; the {side}, {nearest_zenith:g} deg, taken as it is"
        return NodeChoice(
            (group[nearest],),
            (1.0,),
            nearest_zenith,
            f"no interpolation: {why}, not extrapolated",
            off_target=True,
        )
    low, high = int(below[-1]), int(above[0])
    weights = cos_zenith_weights(zeniths[low], zeniths[high], zenith)
    return NodeChoice(
        (group[low], group[high]),
        weights,
        float(zenith),
        f"interpolated in cos(zenith) between the nodes at zenith "
        f"{zeniths[low]:g} and {zeniths[high]:g} deg ({where}) bracketing "
        f"{zenith:g} deg",
    )


def read_irf_node(path):
    """
    The node of an IRF file of ``ctapipe-sst1m-compute-irf``, checked complete.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    IrfNode

    Raises
    ------
    ProductError
        If the file is incomplete, damaged or not an IRF product.
    IrfInterpolationError
        If the file records no node (stock ``ctapipe-compute-irf``) or was made
        here (an interpolated IRF is not a node).
    """
    header = verify_fits_product(path, kinds=(IRF,))
    node = IrfNode.from_header(header)
    if node is None:
        raise IrfInterpolationError(
            f"{path}: records no pointing node (ALT_PNT, AZ_PNT, FOVMAX; made by "
            "ctapipe-compute-irf?); compute the IRFs with ctapipe-sst1m-compute-irf"
        )
    if "INTERPOL" in header:
        raise IrfInterpolationError(
            f"{path}: made from other IRF files ({header.get('SRCIRF1')}...), not "
            "a node of simulations; give the IRF files of ctapipe-sst1m-compute-irf"
        )
    return node


def energy_thresholds(hdu):
    """
    GADF ``LO_THRES``/``HI_THRES`` of an effective-area HDU: the true energies
    (TeV) where some offset bin has an area.

    Returns
    -------
    (float, float) or None
        None if the area is zero everywhere.
    """
    area = np.asarray(hdu.data["EFFAREA"][0])
    # the last axis of a GADF array is true energy
    with_area = np.flatnonzero(area.reshape(-1, area.shape[-1]).max(axis=0) > 0)
    if len(with_area) == 0:
        return None
    return (
        float(hdu.data["ENERG_LO"][0][with_area[0]]),
        float(hdu.data["ENERG_HI"][0][with_area[-1]]),
    )


def _edges(hdu, name):
    """Bin edges of axis ``name`` (``MIGRA``, ``RAD``) of a one-row GADF HDU."""
    low, high = hdu.data[f"{name}_LO"][0], hdu.data[f"{name}_HI"][0]
    return np.append(low, high[-1])


def _estimate(hdu_class, hdus, grid, target):
    """The interpolated value column of one IRF class, one row (no leading axis)."""
    column = IRF_VALUE_COLUMNS[hdu_class]
    first = hdus[0]
    unit = u.Unit(first.columns[column].unit or "")
    # pyirf's estimators change their inputs in place: a fresh array
    values = np.stack([np.array(h.data[column][0], dtype=float) for h in hdus])
    if hdu_class == "AEFF_2D":
        floor = u.Quantity(MIN_EFFECTIVE_AREA, u.m**2)
        estimator = EffectiveAreaEstimator(
            grid, u.Quantity(values, unit), min_effective_area=floor
        )
        area = estimator(target)[0]
        # pyirf raises areas to the floor before the log and zeroes only those
        # below it after: bins without area in both nodes come back as the floor
        area[area <= floor] = 0
        return area.to_value(unit)
    if hdu_class == "EDISP_2D":
        # GADF MATRIX rows are (offset, migration, true energy). Moment
        # morphing: pyirf's default quantile interpolation moved the median
        # migration of two identical toy-chain nodes by up to 0.1 (a bin of
        # sst1m_irf.yaml's 50), moment morphing gives them back exactly
        estimator = EnergyDispersionEstimator(
            grid,
            _edges(first, "MIGRA"),
            values,
            interpolator_cls=MomentMorphInterpolator,
            axis=-2,
        )
        return estimator(target)[0]
    if hdu_class == "PSF_TABLE":
        # GADF RPSF rows are (source offset, offset, true energy)
        estimator = PSFTableEstimator(
            grid,
            u.Quantity(_edges(first, "RAD"), first.columns["RAD_LO"].unit),
            u.Quantity(values, unit),
            axis=-3,
        )
        return estimator(target)[0].to_value(unit)
    if hdu_class == "RAD_MAX_2D":
        # the cuts' fill value (theta_fill_value) is also their largest cut
        # (theta_max_angle): not told apart, all values interpolated alike
        estimator = RadMaxEstimator(grid, values, fill_value=None)
        return estimator(target)[0]
    # background rates: linear, as RAD_MAX (no pyirf estimator for them)
    estimator = ParametrizedComponentEstimator(grid, values)
    return estimator(target)[0]


def _check_same(node_hdus, paths):
    """The nodes' HDUs, axes and cards must be the same but for the values."""
    first, first_path = node_hdus[0], paths[0]
    names = [h.name for h in first[1:]]
    for hdus, path in zip(node_hdus[1:], paths[1:], strict=True):
        other = [h.name for h in hdus[1:]]
        if other != names:
            raise IrfInterpolationError(
                f"{path}: IRF HDUs {other}, {first_path}: {names}; interpolate "
                "IRFs computed with the same configuration"
            )
        for card in SAME_CARDS:
            if hdus[0].header.get(card) != first[0].header.get(card):
                raise IrfInterpolationError(
                    f"{path}: {card} = {hdus[0].header.get(card)!r}, {first_path}: "
                    f"{first[0].header.get(card)!r}; interpolate IRFs of the same "
                    "telescopes, reconstructions and field-of-view cut"
                )
        for hdu, reference in zip(hdus[1:], first[1:], strict=True):
            for card in ("HDUCLAS3", "HDUCLAS4"):
                if hdu.header.get(card) != reference.header.get(card):
                    raise IrfInterpolationError(
                        f"{path}: {hdu.name} is {hdu.header.get(card)}, in "
                        f"{first_path} {reference.header.get(card)}; interpolate "
                        "IRFs computed with the same configuration"
                    )
            value = IRF_VALUE_COLUMNS.get(hdu.header.get("HDUCLAS4"))
            for column in reference.columns.names:
                if column == value:
                    continue
                same = np.array_equal(
                    np.asarray(hdu.data[column]), np.asarray(reference.data[column])
                )
                if not same:
                    raise IrfInterpolationError(
                        f"{path}: {hdu.name} {column} differs from {first_path}'s: "
                        "interpolate IRFs computed with the same binning"
                    )


def interpolate_hdus(node_hdus, zeniths, zenith, paths=None):
    """
    The IRF HDUs of nodes interpolated in cos(zenith) with pyirf's estimators.

    Parameters
    ----------
    node_hdus : sequence of astropy.io.fits.HDUList
        IRF files of ``ctapipe-sst1m-compute-irf`` (primary HDU first), of the
        same configuration, telescopes and binning.
    zeniths : sequence of float
        Their zenith angles (deg), different.
    zenith : float
        Target zenith angle (deg), within the nodes' range.
    paths : sequence, optional
        Names of the nodes for messages.

    Returns
    -------
    list of astropy.io.fits.BinTableHDU
        Copies of the first node's HDUs (headers, axes) with the interpolated
        values; effective areas with their ``LO_THRES``/``HI_THRES``.

    Raises
    ------
    IrfInterpolationError
        If the nodes differ in HDUs, cards, binning, or hold an IRF class
        without an estimator here, or the interpolation gives NaN.
    """
    paths = [str(p) for p in (paths or [f"node {i}" for i in range(len(node_hdus))])]
    _check_same(node_hdus, paths)
    grid = np.cos(np.radians(np.asarray(zeniths, dtype=float)))
    target = np.array([np.cos(np.radians(zenith))])
    hdus = []
    for position, template in enumerate(node_hdus[0][1:], start=1):
        hdu_class = template.header.get("HDUCLAS4")
        if hdu_class not in IRF_VALUE_COLUMNS:
            raise IrfInterpolationError(
                f"{paths[0]}: {template.name} is {hdu_class}, not an IRF class "
                f"interpolated here ({', '.join(IRF_VALUE_COLUMNS)})"
            )
        if len(template.data) != 1:
            raise IrfInterpolationError(
                f"{paths[0]}: {template.name} has {len(template.data)} rows, GADF "
                "IRFs one"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            values = _estimate(hdu_class, [h[position] for h in node_hdus], grid, target)
        hdu = template.copy()
        column = IRF_VALUE_COLUMNS[hdu_class]
        hdu.data[column][0] = values.reshape(hdu.data[column][0].shape)
        if hdu_class == "AEFF_2D":
            thresholds = energy_thresholds(hdu)
            for card, value in zip(
                ("LO_THRES", "HI_THRES"), thresholds or (None, None), strict=True
            ):
                if card in hdu.header and value is not None:
                    hdu.header[card] = value
        hdus.append(hdu)
    if nan := nan_columns(hdus):
        name, column, n_nan, size = nan[0]
        raise IrfInterpolationError(
            f"{', '.join(paths)}: interpolated {name} {column} has {n_nan} of {size} "
            "values NaN"
        )
    return hdus


def _source_cards(choice, paths, zeniths):
    """Primary-header cards naming the nodes, their weights and the rule."""
    cards = {
        "INTERPOL": (choice.interpolated, "IRFs interpolated in cos(zenith)"),
        "NODERULE": (choice.reason, "why these IRF nodes"),
    }
    for number, (path, node_zenith, weight) in enumerate(
        zip(paths, zeniths, choice.weights, strict=True), start=1
    ):
        # no comment: a long path would push it out of the card (astropy warns)
        cards[f"SRCIRF{number}"] = str(path)
        cards[f"SRCZEN{number}"] = (
            float(node_zenith),
            f"[deg] zenith angle of node {number}",
        )
        cards[f"SRCWGT{number}"] = (float(weight), f"weight of node {number}")
    return cards


def irf_at_zenith(paths, zenith, azimuth=None, nsb=None, tolerance=ZENITH_TOLERANCE):
    """
    The IRFs at ``zenith`` from the IRF files of a library, by the rule of the
    module docstring.

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
        IRF files of ``ctapipe-sst1m-compute-irf``, one per node.
    zenith : float
        Target zenith angle (deg).
    azimuth : float, optional
        Target azimuth (deg), needed if the nodes are at several azimuths.
    nsb : str, optional
        NSB label, needed if the nodes have several.
    tolerance : float
        A node closer than this to ``zenith`` (deg) is taken as it is.

    Returns
    -------
    hdus : astropy.io.fits.HDUList
        Primary header with the node's cards and the sources' (not yet
        written: see `write_irf_at_zenith`).
    choice : NodeChoice
    nodes : list of IrfNode
        Of ``paths``.

    Raises
    ------
    ProductError
        If an IRF file is incomplete or damaged.
    IrfInterpolationError
        See `choose_nodes`, `read_irf_node` and `interpolate_hdus`.
    """
    paths = [Path(p) for p in paths]
    nodes = [read_irf_node(path) for path in paths]
    choice = choose_nodes(nodes, zenith, azimuth, nsb, tolerance)
    chosen = [paths[i] for i in choice.indices]
    zeniths = [nodes[i].zenith for i in choice.indices]
    node_hdus = [fits.open(path, memmap=False) for path in chosen]
    try:
        primary = node_hdus[0][0].copy()
        if choice.interpolated:
            hdus = interpolate_hdus(node_hdus, zeniths, zenith, chosen)
            node = nodes[choice.indices[0]]
            interpolated = IrfNode(
                alt=90.0 - float(zenith), az=node.az, nsb=node.nsb, fov_max=node.fov_max
            )
            primary.header.update(interpolated.header_cards())
        else:
            hdus = [hdu.copy() for hdu in node_hdus[0][1:]]
    finally:
        for hdul in node_hdus:
            hdul.close()
    for card in ("CHECKSUM", "DATASUM"):
        primary.header.remove(card, ignore_missing=True)
    primary.header.update(_source_cards(choice, chosen, zeniths))
    return fits.HDUList([primary, *hdus]), choice, nodes


def write_irf_at_zenith(
    paths, output, zenith, azimuth=None, nsb=None, tolerance=ZENITH_TOLERANCE
):
    """
    Write the IRFs at ``zenith`` (`irf_at_zenith`) as a complete IRF product.

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
        IRF files of ``ctapipe-sst1m-compute-irf``, one per node.
    output : str or pathlib.Path
        IRF file to write (``.gz`` compresses); replaced if it exists.
    zenith, azimuth, nsb, tolerance
        See `irf_at_zenith`.

    Returns
    -------
    hdus : astropy.io.fits.HDUList
        As written.
    choice : NodeChoice
    nodes : list of IrfNode

    Raises
    ------
    ProductError
        If an IRF file is incomplete or damaged.
    IrfInterpolationError
        See `irf_at_zenith`.
    OSError
        If the output cannot be written.
    """
    hdus, choice, nodes = irf_at_zenith(paths, zenith, azimuth, nsb, tolerance)
    write_fits_product(hdus, output, IRF)
    return hdus, choice, nodes
