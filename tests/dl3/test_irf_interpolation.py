"""
IRFs between library nodes: the rule that picks the nodes (synthetic node
lists), and the interpolation of GADF IRF files written with pyirf's own HDU
writers (those ctapipe-compute-irf uses) for shapes whose zenith dependence is
known. The comparison with IRFs computed at the interpolated zenith from the
toy simulation is in tests/chain/test_irf_interpolation.py.
"""

import random

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from ctapipe.core import run_tool
from pyirf.io import (
    create_aeff2d_hdu,
    create_background_2d_hdu,
    create_energy_dispersion_hdu,
    create_psf_table_hdu,
    create_rad_max_hdu,
)
from scipy.stats import norm

from ctapipe_sst1m.core.products import (
    IRF,
    ProductError,
    verify_fits_product,
    write_fits_product,
)
from ctapipe_sst1m.dl3.irf_interpolation import (
    IrfInterpolationError,
    choose_nodes,
    cos_zenith_weights,
    energy_thresholds,
    irf_at_zenith,
    write_irf_at_zenith,
)
from ctapipe_sst1m.dl3.irf_node import IrfNode
from ctapipe_sst1m.tools.interpolate_irf import InterpolateIrfTool

from ..helpers import parse_summary

ENERGY = np.geomspace(0.1, 1000, 21) * u.TeV
FOV = np.array([0, 1]) * u.deg
MIGRA = np.linspace(0.2, 5, 51)
RAD = np.linspace(0, 1, 101) * u.deg


def node(zenith, az=180.0, nsb="dark"):
    return IrfNode(alt=90.0 - zenith, az=az, nsb=nsb, fov_max=1.0)


# -- the rule ------------------------------------------------------------------


def test_bracketing_nodes_weights_linear_in_cos_zenith():
    nodes = [node(50), node(10), node(30)]
    choice = choose_nodes(nodes, 20.0)
    assert choice.interpolated
    assert choice.indices == (1, 2)
    assert choice.zenith == 20.0
    # linear in cos(zenith): the weights give back cos(20 deg)
    w10, w30 = choice.weights
    cosines = np.cos(np.radians([10, 30, 20]))
    assert w10 * cosines[0] + w30 * cosines[1] == pytest.approx(cosines[2], abs=1e-12)
    assert (w10, w30) == pytest.approx((0.6202, 0.3798), abs=1e-4)
    assert choice.reason == (
        "interpolated in cos(zenith) between the nodes at zenith 10 and 30 deg "
        "(az 180 deg, NSB dark) bracketing 20 deg"
    )
    # the nearest node above and below, not the grid's extremes
    assert choose_nodes(nodes, 40.0).indices == (2, 0)


def test_choice_does_not_depend_on_the_order_of_the_nodes():
    zeniths = [0, 10, 20, 30, 40, 50, 60]
    shuffled = zeniths.copy()
    random.Random(1).shuffle(shuffled)
    for target in (3.0, 17.2, 20.4, 44.0, 61.0):
        a = choose_nodes([node(z) for z in zeniths], target)
        b = choose_nodes([node(z) for z in shuffled], target)
        assert [zeniths[i] for i in a.indices] == [shuffled[i] for i in b.indices]
        assert a.weights == pytest.approx(b.weights)


def test_node_within_tolerance_taken_as_it_is():
    nodes = [node(10), node(30)]
    for target in (29.5, 30.0, 30.5):
        choice = choose_nodes(nodes, target)
        assert not choice.interpolated
        assert choice.indices == (1,)
        assert choice.weights == (1.0,)
        assert choice.zenith == 30.0
        assert "within 0.5 deg" in choice.reason
        assert not choice.off_target
    assert choose_nodes(nodes, 29.4).interpolated
    # the tolerance is a parameter
    assert choose_nodes(nodes, 29.4, tolerance=1.0).indices == (1,)
    assert choose_nodes(nodes, 30.0, tolerance=0.0).indices == (1,)


def test_outside_the_grid_nearest_node_not_extrapolated():
    nodes = [node(20), node(40), node(30)]
    below = choose_nodes(nodes, 12.0)
    assert (below.indices, below.zenith, below.interpolated) == ((0,), 20.0, False)
    assert below.off_target
    assert below.reason == (
        "no interpolation: zenith 12 deg is outside the nodes' range at az 180 deg, "
        "NSB dark (20-40 deg); the smallest, 20 deg, taken as it is, not "
        "extrapolated"
    )
    above = choose_nodes(nodes, 55.0)
    assert (above.indices, above.zenith) == ((1,), 40.0)
    assert "the largest, 40 deg" in above.reason
    single = choose_nodes([node(30)], 20.0)
    assert single.indices == (0,)
    assert single.reason == (
        "no interpolation: the only node at az 180 deg, NSB dark is at zenith 30 "
        "deg, not extrapolated"
    )


def test_azimuth_node_nearest_to_the_target_azimuth():
    nodes = [node(10, az=180), node(30, az=180), node(20, az=0), node(40, az=0)]
    assert choose_nodes(nodes, 25.0, azimuth=170.0).indices == (0, 1)
    # azimuths wrap: 350 deg is 10 deg from the nodes at 0
    choice = choose_nodes(nodes, 25.0, azimuth=350.0)
    assert choice.indices == (2, 3)
    assert "az 0 deg" in choice.reason
    # a node at another azimuth is never a bracketing node
    assert choose_nodes(nodes, 15.0, azimuth=10.0).indices == (2,)
    with pytest.raises(IrfInterpolationError, match="azimuths 180, 0 deg: say which"):
        choose_nodes(nodes, 25.0)


def test_nsb_label_chooses_the_nodes():
    nodes = [node(10, nsb="dark"), node(30, nsb="dark"), node(20, nsb="moon")]
    assert choose_nodes(nodes, 25.0, nsb="dark").indices == (0, 1)
    assert choose_nodes(nodes, 25.0, nsb="moon").indices == (2,)
    with pytest.raises(IrfInterpolationError, match="NSB dark, moon: say which"):
        choose_nodes(nodes, 25.0)
    with pytest.raises(IrfInterpolationError, match="no IRF node of NSB 'bright'"):
        choose_nodes(nodes, 25.0, nsb="bright")


def test_refusals():
    with pytest.raises(IrfInterpolationError, match="two IRF nodes at zenith 30 deg"):
        choose_nodes([node(10), node(30), node(30.05)], 20.0)
    with pytest.raises(IrfInterpolationError, match="no IRF nodes given"):
        choose_nodes([], 20.0)
    with pytest.raises(IrfInterpolationError, match="not in"):
        choose_nodes([node(10)], 95.0)
    with pytest.raises(IrfInterpolationError, match="same zenith angle"):
        cos_zenith_weights(20.0, 20.0, 20.0)


# -- files ---------------------------------------------------------------------


def truth(zenith):
    """IRF shapes with a known zenith dependence, linear in cos(zenith) or 1/cos."""
    cos = np.cos(np.radians(zenith))
    return dict(
        # geometric area growing as 1 / cos(zenith), as the shower footprint
        area_scale=1 / cos,
        bias=0.3 * (1 - cos),
        width=0.1 + 0.5 * (1 - cos),
        sigma=0.05 + 0.5 * (1 - cos),
        rad_max=0.1 + 0.5 * (1 - cos),
        background=1e-4 / cos,
    )


def write_synthetic_irf(path, zenith, point_like=False, az=180.0, nsb="dark", **cards):
    """A complete IRF file in the layout of ctapipe-sst1m-compute-irf."""
    t = truth(zenith)
    centers = np.sqrt(ENERGY[:-1] * ENERGY[1:]).to_value(u.TeV)
    n_energy = len(centers)
    # threshold at 0.3 TeV, zero below 0.2 TeV and above 200 TeV
    efficiency = 1 / (1 + (0.3 / centers) ** 3)
    efficiency[(centers < 0.2) | (centers > 200)] = 0
    area = (2e4 * t["area_scale"] * efficiency)[:, None] * u.m**2
    migra = 0.5 * (MIGRA[1:] + MIGRA[:-1])
    edisp = norm.pdf(migra, 1 + t["bias"], t["width"])
    edisp = np.broadcast_to(edisp[None, :, None], (n_energy, len(migra), 1)).copy()
    # no events where there is no area: empty PDFs
    edisp[efficiency == 0] = 0
    rad = 0.5 * (RAD[1:] + RAD[:-1]).to_value(u.deg)
    psf = np.exp(-0.5 * (rad / t["sigma"]) ** 2)
    psf = psf / np.sum(psf * 2 * np.pi * np.diff(-np.cos(RAD.to_value(u.rad))))
    psf = np.broadcast_to(psf[None, None, :], (n_energy, 1, len(rad))).copy()
    psf[efficiency == 0] = 0
    kind = "POINT-LIKE" if point_like else "FULL-ENCLOSURE"
    hdus = [
        fits.PrimaryHDU(),
        create_aeff2d_hdu(area, ENERGY, FOV, point_like=point_like),
        create_energy_dispersion_hdu(
            edisp, ENERGY, MIGRA, FOV, point_like=point_like, extname="ENERGY DISPERSION"
        ),
        create_psf_table_hdu(psf * u.sr**-1, ENERGY, RAD, FOV),
    ]
    if point_like:
        rad_max = np.full((n_energy, 1), t["rad_max"]) * u.deg
        hdus.append(create_rad_max_hdu(rad_max, ENERGY, FOV))
    background = np.full((n_energy, 1), t["background"]) * u.Unit("MeV-1 s-1 sr-1")
    hdus.append(create_background_2d_hdu(background, ENERGY, FOV))
    hdus = fits.HDUList(hdus)
    for hdu in hdus[1:]:
        hdu.header["HDUCLAS3"] = kind if hdu.name != "PSF" else "FULL-ENCLOSURE"
    # as ctapipe-sst1m-compute-irf states them
    low, high = energy_thresholds(hdus["EFFECTIVE AREA"])
    hdus["EFFECTIVE AREA"].header["LO_THRES"] = low
    hdus["EFFECTIVE AREA"].header["HI_THRES"] = high
    header = hdus[0].header
    header["TELLIST"] = "21,22"
    header["ENERGREC"] = "RandomForestRegressor"
    header["GEOMREC"] = "HillasReconstructor"
    header["GHCLASS"] = "RandomForestClassifier"
    header.update(IrfNode(90.0 - zenith, az, nsb, 1.0).header_cards())
    header.update(cards)
    return write_fits_product(hdus, path, IRF)


def column(path, name, col):
    with fits.open(path) as hdus:
        return np.array(hdus[name].data[col][0]), hdus[name].header.copy()


def edisp_median_width(matrix):
    """Median and half 16-84 % width of the migration per true-energy bin."""
    result = []
    for pdf in np.moveaxis(matrix[0], -1, 0):  # rows: (offset, migra, energy)
        cdf = np.concatenate([[0], np.cumsum(pdf * np.diff(MIGRA))])
        if cdf[-1] == 0:
            result.append((np.nan, np.nan))
            continue
        q16, q50, q84 = np.interp([0.16, 0.5, 0.84], cdf / cdf[-1], MIGRA)
        result.append((q50, (q84 - q16) / 2))
    return np.array(result)


def psf_containment(rpsf):
    """68 % containment radius (deg) per true-energy bin (RPSF row)."""
    rad = np.radians(RAD.to_value(u.deg))
    solid = 2 * np.pi * (np.cos(rad[:-1]) - np.cos(rad[1:]))
    result = []
    for pdf in rpsf[:, 0, :].T:  # rows: (source offset, offset, energy)
        cdf = np.concatenate([[0], np.cumsum(pdf * solid)])
        if cdf[-1] == 0:
            result.append(np.nan)
            continue
        result.append(np.interp(0.68, cdf / cdf[-1], RAD.to_value(u.deg)))
    return np.array(result)


@pytest.fixture
def library(tmp_path):
    paths = {z: tmp_path / f"ze{z}.fits.gz" for z in (10, 30)}
    for zenith, path in paths.items():
        write_synthetic_irf(path, zenith)
    return paths


def test_interpolated_file_matches_the_truth(library, tmp_path):
    output = tmp_path / "ze20.fits.gz"
    hdus, choice, _ = write_irf_at_zenith(list(library.values()), output, 20.0)
    header = verify_fits_product(output, kinds=(IRF,))
    assert IrfNode.from_header(header) == node(20.0)
    assert header["ZEN_PNT"] == 20.0
    assert header["INTERPOL"] is True
    assert header["SRCIRF1"] == str(library[10])
    assert header["SRCIRF2"] == str(library[30])
    assert (header["SRCZEN1"], header["SRCZEN2"]) == (10.0, 30.0)
    assert (header["SRCWGT1"], header["SRCWGT2"]) == pytest.approx(choice.weights)
    assert header["NODERULE"] == choice.reason
    assert header["TELLIST"] == "21,22"
    assert header["GHCLASS"] == "RandomForestClassifier"
    with fits.open(library[10]) as node_hdus:
        assert [h.name for h in hdus] == [h.name for h in node_hdus]
        for hdu, reference in zip(hdus[1:], node_hdus[1:], strict=True):
            assert hdu.columns.names == reference.columns.names
            for card in ("HDUCLAS1", "HDUCLAS2", "HDUCLAS3", "HDUCLAS4"):
                assert hdu.header[card] == reference.header[card]

    expected = truth(20.0)
    # effective area: log linear in cos(zenith), which gives 1/cos to 0.2 %
    area, aeff_header = column(output, "EFFECTIVE AREA", "EFFAREA")
    node_area, _ = column(library[10], "EFFECTIVE AREA", "EFFAREA")
    with_area = node_area > 0
    np.testing.assert_array_equal(area > 0, with_area)
    ratio = area[with_area] / node_area[with_area]
    scales = np.array([truth(z)["area_scale"] for z in (10.0, 30.0)])
    log_linear = np.exp(np.dot(choice.weights, np.log(scales))) / scales[0]
    np.testing.assert_allclose(ratio, log_linear, rtol=1e-9)
    np.testing.assert_allclose(
        ratio, expected["area_scale"] / truth(10.0)["area_scale"], rtol=2.5e-3
    )
    # the energy range with area, as the nodes': 0.25-251 TeV
    assert aeff_header["LO_THRES"] == pytest.approx(0.2512, abs=1e-4)
    assert aeff_header["HI_THRES"] == pytest.approx(251.2, abs=0.1)

    # moment morphing of Gaussians whose mean and width are linear in
    # cos(zenith): the truth at 20 deg, to a fifth of a migration bin (0.096)
    matrix, _ = column(output, "ENERGY DISPERSION", "MATRIX")
    stats = edisp_median_width(matrix)
    filled = np.isfinite(stats[:, 0])
    # PDFs where there is area, empty elsewhere
    np.testing.assert_array_equal(filled, area[0] > 0)
    np.testing.assert_allclose(stats[filled, 0], 1 + expected["bias"], atol=0.02)
    np.testing.assert_allclose(stats[filled, 1], expected["width"], atol=0.02)

    psf, psf_header = column(output, "PSF", "RPSF")
    assert psf_header["TUNIT7"] == "sr-1"
    containment = psf_containment(psf)
    # 68 % containment of a 2D Gaussian: 1.51 sigma
    np.testing.assert_allclose(containment[filled], 1.5096 * expected["sigma"], rtol=0.03)

    background, _ = column(output, "BACKGROUND", "BKG")
    weights = np.array(choice.weights)
    linear = weights @ [truth(10.0)["background"], truth(30.0)["background"]]
    np.testing.assert_allclose(background, linear, rtol=1e-12)


def test_point_like_rad_max_interpolated_linearly(tmp_path):
    paths = [tmp_path / f"ze{z}.fits.gz" for z in (10, 30)]
    for zenith, path in zip((10, 30), paths, strict=True):
        write_synthetic_irf(path, zenith, point_like=True)
    hdus, _, _ = irf_at_zenith(paths, 20.0)
    assert [h.name for h in hdus[1:]] == [
        "EFFECTIVE AREA",
        "ENERGY DISPERSION",
        "PSF",
        "RAD_MAX",
        "BACKGROUND",
    ]
    assert hdus["RAD_MAX"].header["HDUCLAS3"] == "POINT-LIKE"
    # RAD_MAX of the synthetic nodes is linear in cos(zenith): exact
    np.testing.assert_allclose(
        hdus["RAD_MAX"].data["RAD_MAX"][0], truth(20.0)["rad_max"], rtol=1e-12
    )


def test_identical_nodes_give_back_the_node(tmp_path):
    """What the interpolation alone changes: resampling of the PDFs."""
    paths = [tmp_path / "a.fits.gz", tmp_path / "b.fits.gz"]
    write_synthetic_irf(paths[0], 20.0)
    with fits.open(paths[0]) as hdus:
        copy = fits.HDUList([h.copy() for h in hdus])
    copy[0].header.update(node(30.0).header_cards())
    write_fits_product(copy, paths[1], IRF)
    hdus, choice, _ = irf_at_zenith(paths, 25.0)
    assert choice.interpolated
    with fits.open(paths[0]) as reference:
        np.testing.assert_allclose(
            hdus["EFFECTIVE AREA"].data["EFFAREA"], reference[1].data["EFFAREA"]
        )
        np.testing.assert_array_equal(
            hdus["BACKGROUND"].data["BKG"], reference["BACKGROUND"].data["BKG"]
        )
        # moment morphing gives the same PDFs back
        np.testing.assert_allclose(
            hdus["ENERGY DISPERSION"].data["MATRIX"],
            reference["ENERGY DISPERSION"].data["MATRIX"],
            rtol=1e-9,
            atol=1e-12,
        )
        # the quantile interpolation of the PSF resamples it
        got = psf_containment(hdus["PSF"].data["RPSF"][0])
        want = psf_containment(reference["PSF"].data["RPSF"][0])
    np.testing.assert_allclose(got, want, rtol=0.02)


def test_nearest_node_copied_with_its_own_pointing(library, tmp_path):
    output = tmp_path / "ze40.fits.gz"
    _, choice, _ = write_irf_at_zenith(list(library.values()), output, 40.0)
    assert not choice.interpolated
    header = verify_fits_product(output, kinds=(IRF,))
    # the node's pointing, not the target's: ctapipe-sst1m-dl3 checks runs
    # against what the IRFs are
    assert header["ZEN_PNT"] == 30.0
    assert header["INTERPOL"] is False
    assert header["SRCIRF1"] == str(library[30])
    assert header["SRCWGT1"] == 1.0
    assert "SRCIRF2" not in header
    np.testing.assert_array_equal(
        column(output, "ENERGY DISPERSION", "MATRIX")[0],
        column(library[30], "ENERGY DISPERSION", "MATRIX")[0],
    )


def test_files_that_cannot_be_interpolated(library, tmp_path):
    nodes = list(library.values())
    other = tmp_path / "other.fits.gz"
    write_synthetic_irf(other, 30.0, TELLIST="21")
    with pytest.raises(IrfInterpolationError, match=r"TELLIST = '21', .*ze10"):
        irf_at_zenith([nodes[0], other], 20.0)

    point_like = tmp_path / "point_like.fits.gz"
    write_synthetic_irf(point_like, 30.0, point_like=True)
    with pytest.raises(IrfInterpolationError, match="IRF HDUs"):
        irf_at_zenith([nodes[0], point_like], 20.0)

    # an interpolated file is not a node
    made = tmp_path / "ze20.fits.gz"
    write_irf_at_zenith(nodes, made, 20.0)
    with pytest.raises(IrfInterpolationError, match="made from other IRF files"):
        irf_at_zenith([made, nodes[1]], 25.0)

    # a file of stock ctapipe-compute-irf records no node
    with fits.open(nodes[1]) as hdus:
        stock = fits.HDUList([h.copy() for h in hdus])
    for card in ("ALT_PNT", "AZ_PNT", "ZEN_PNT", "NSBNODE", "FOVMAX"):
        del stock[0].header[card]
    write_fits_product(stock, tmp_path / "stock.fits.gz", IRF)
    with pytest.raises(IrfInterpolationError, match="records no pointing node"):
        irf_at_zenith([nodes[0], tmp_path / "stock.fits.gz"], 20.0)

    # a file cut short
    truncated = tmp_path / "truncated.fits.gz"
    truncated.write_bytes(nodes[1].read_bytes()[:2000])
    with pytest.raises(ProductError, match=r"truncated\.fits\.gz"):
        irf_at_zenith([nodes[0], truncated], 20.0)


# -- the tool ------------------------------------------------------------------


def test_tool_summary(library, tmp_path, capsys):
    argv = [
        f"--irf={library[10]}",
        f"--irf={library[30]}",
        "--zenith=20",
        "--azimuth=175",
        "--output=ze20.fits.gz",
    ]
    capsys.readouterr()
    assert run_tool(InterpolateIrfTool(), argv=argv, cwd=tmp_path) == 0
    stderr = capsys.readouterr().err
    rows = parse_summary(
        stderr,
        "ctapipe-sst1m-interpolate-irf: IRFs at zenith 20 deg, interpolated, "
        "written to ze20.fits.gz",
    )
    header = verify_fits_product(tmp_path / "ze20.fits.gz", kinds=(IRF,))
    assert (
        rows["IRFs"]
        == "full-enclosure: EFFECTIVE AREA, ENERGY DISPERSION, PSF, BACKGROUND"
    )
    assert rows["node"] == (
        "zenith 20 deg (alt 70 deg), az 180 deg, NSB dark, field of view 1 deg"
    )
    # paths relative to the working directory
    assert rows["from"] == (
        f"ze10.fits.gz (zenith 10 deg, weight {header['SRCWGT1']:.3f}), "
        f"ze30.fits.gz (zenith 30 deg, weight {header['SRCWGT2']:.3f})"
    )
    assert rows["rule"] == header["NODERULE"]


def test_tool_positional_files_and_nearest_node_warning(library, tmp_path, capsys):
    argv = [*map(str, library.values()), "--zenith=45", "--output=ze45.fits.gz"]
    capsys.readouterr()
    assert run_tool(InterpolateIrfTool(), argv=argv, cwd=tmp_path) == 0
    stderr = capsys.readouterr().err
    assert "WARNING" in stderr
    assert "zenith 45 deg: no interpolation: zenith 45 deg is outside" in stderr
    rows = parse_summary(
        stderr,
        "ctapipe-sst1m-interpolate-irf: IRFs at zenith 45 deg, NOT interpolated, "
        "written to ze45.fits.gz",
    )
    assert rows["node"].startswith("zenith 30 deg (alt 60 deg)")
    # an existing output is not replaced without --overwrite
    capsys.readouterr()
    assert run_tool(InterpolateIrfTool(), argv=argv, cwd=tmp_path, raises=False) == 2
    assert "ze45.fits.gz exists, but overwrite=False" in capsys.readouterr().err
    assert run_tool(InterpolateIrfTool(), argv=[*argv, "--overwrite"], cwd=tmp_path) == 0
    # a node within the tolerance is taken as it is, without a warning
    close = [*map(str, library.values()), "--zenith=30.3", "--output=near30.fits.gz"]
    capsys.readouterr()
    assert run_tool(InterpolateIrfTool(), argv=close, cwd=tmp_path) == 0
    stderr = capsys.readouterr().err
    assert "WARNING" not in stderr
    rows = parse_summary(
        stderr,
        "ctapipe-sst1m-interpolate-irf: IRFs at zenith 30.3 deg, NOT interpolated, "
        "written to near30.fits.gz",
    )
    assert rows["rule"] == (
        "the node at zenith 30 deg (az 180 deg, NSB dark) is within 0.5 deg of "
        "zenith 30.3 deg: taken as it is"
    )


def test_tool_refusals(library, tmp_path, capsys):
    nodes = [f"--irf={p}" for p in library.values()]
    for argv, message in (
        ([*nodes, "--output=x.fits.gz"], "no zenith angle given; set --zenith"),
        ([*nodes, "--zenith=20"], "no output file given; set --output"),
        (["--zenith=20", "--output=x.fits.gz"], "no IRF files given"),
        (
            [*nodes, "--zenith=20", "--nsb=moon", "--output=x.fits.gz"],
            "no IRF node of NSB 'moon'",
        ),
        (
            [*nodes, "--zenith=20", f"--output={library[30]}", "--overwrite"],
            f"{library[30]}: the output is one of the IRF files given",
        ),
    ):
        capsys.readouterr()
        assert run_tool(InterpolateIrfTool(), argv=argv, cwd=tmp_path, raises=False) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.fits.gz").exists()
