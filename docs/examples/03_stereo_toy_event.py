"""
A stereo event of the toy simulation
====================================

The two SST-1M telescopes, 155 m apart at Ondřejov, see the same shower from
two sides. Each image is an ellipse whose long axis points back to where the
shower came from; one telescope only gives the line, two give the point where
the lines cross: the shower direction. This is what ``HillasReconstructor``
does in ``ctapipe-process`` with ``sst1m_mc_stereo.yaml``.

The event comes from the package's toy simulation (``ctapipe_sst1m.io.toy``),
which stands in for sim_telarray in the tutorial: a ``*.sst1mtoy`` file of a few
lines of YAML, read by ctapipe's ``EventSource`` like any simulation file, with
tel 21 and 22 as in data. Its images are Gaussian ellipses, not showers, but
they go through the same cleaning and reconstruction.
"""

import tempfile
from importlib.resources import files
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import yaml
from astropy.coordinates import AltAz, SkyCoord
from ctapipe.coordinates import TelescopeFrame
from ctapipe.image import ImageProcessor
from ctapipe.io import EventSource
from ctapipe.reco import ShowerProcessor
from ctapipe.visualization import CameraDisplay
from traitlets.config import Config

from ctapipe_sst1m.io.toy import write_toy_config

# %%
# Simulate, clean and reconstruct
# -------------------------------
#
# 300 gamma showers from the pointing direction; ``sst1m_mc.yaml`` and
# ``sst1m_mc_stereo.yaml`` configure the cleaning and the reconstruction, as
# for ``ctapipe-process``. The toy yields images directly (DL1), so there is
# no charge extraction to run. We keep the first event with two bright images.

resources = files("ctapipe_sst1m") / "resources"
config = Config()
for name in ["sst1m_mc.yaml", "sst1m_mc_stereo.yaml"]:
    config.merge(Config(yaml.safe_load((resources / name).read_text())))

with tempfile.TemporaryDirectory() as tmp:
    toy_file = write_toy_config(
        Path(tmp) / "gamma.sst1mtoy", particle="gamma", n_showers=300, seed=1
    )
    with EventSource(toy_file, config=config) as source:
        subarray = source.subarray
        process_images = ImageProcessor(subarray, config=config)
        reconstruct = ShowerProcessor(subarray, config=config)
        for event in source:
            process_images(event)
            reconstruct(event)
            intensities = [
                dl1.parameters.hillas.intensity for dl1 in event.dl1.tel.values()
            ]
            if len(intensities) == 2 and min(intensities) > 300:
                break
        else:
            raise RuntimeError(f"{toy_file}: no event with two images above 300 p.e.")

# %%
# True and reconstructed direction
# --------------------------------

shower = event.simulation.shower
geometry = event.dl2.stereo.geometry["HillasReconstructor"]
pointing = AltAz(
    alt=event.monitoring.pointing.array_altitude,
    az=event.monitoring.pointing.array_azimuth,
)
true_direction = SkyCoord(alt=shower.alt, az=shower.az, frame=AltAz())
reco_direction = SkyCoord(alt=geometry.alt, az=geometry.az, frame=AltAz())
error = true_direction.separation(reco_direction).to(u.deg)
core_error = np.hypot(geometry.core_x - shower.core_x, geometry.core_y - shower.core_y)
print(f"event {event.index.event_id}: true energy {shower.energy:.2f}")
for tel_id, dl1 in event.dl1.tel.items():
    hillas = dl1.parameters.hillas
    print(
        f"tel {tel_id}: {hillas.intensity:.0f} p.e., {dl1.image_mask.sum()} pixels, "
        f"length {hillas.length:.2f}, width {hillas.width:.3f}"
    )
print(f"direction {error:.3f} from the true one, core {core_error:.1f} from the true one")

# %%
# The two cameras
# ---------------
#
# The cameras in the telescope frame (degrees on the sky from the pointing;
# both telescopes point the same way) around the pointing direction, each
# with its image, the pixels kept by the cleaning (red outline), the Hillas
# ellipse and its long axis. The true direction (star) is close to both axes; the
# reconstructed one (cross) is where they cross.

STAR = dict(marker="*", color="white", markersize=18, markeredgecolor="black")
CROSS = dict(marker="x", color="magenta", markersize=12, markeredgewidth=3)
fov_frame = TelescopeFrame(telescope_pointing=pointing)
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
for ax, (tel_id, dl1) in zip(axes, event.dl1.tel.items(), strict=True):
    camera = subarray.tel[tel_id].camera.geometry.transform_to(fov_frame)
    display = CameraDisplay(
        camera, dl1.image, ax=ax, title=f"tel {tel_id}", cmap="viridis"
    )
    display.add_colorbar(label="p.e.")
    display.highlight_pixels(dl1.image_mask, color="red", linewidth=2)
    hillas = dl1.parameters.hillas
    display.overlay_moments(hillas, with_label=False, color="cyan", lw=2)
    psi = hillas.psi.to_value(u.rad)
    along = np.array([-5, 5])
    ax.plot(
        hillas.fov_lon.to_value(u.deg) + along * np.cos(psi),
        hillas.fov_lat.to_value(u.deg) + along * np.sin(psi),
        color="cyan",
        linestyle="--",
        # the axis crosses the camera: it must not widen the view
        scalex=False,
        scaley=False,
    )
    # keep_old: the ellipse stays
    for direction, style in [(true_direction, STAR), (reco_direction, CROSS)]:
        display.overlay_coordinate(direction, keep_old=True, **style)
    # the images are small: show the centre of the 9 deg field of view
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
plt.show()
