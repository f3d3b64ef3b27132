"""
A real DigiCam event, calibrated and cleaned
============================================

What an SST-1M analyser sees first: one event of a real DigiCam run, read by
ctapipe's ``EventSource`` (which finds the package's ``SST1MEventSource``),
calibrated to photo-electrons and cleaned with the configuration the package
ships for ``ctapipe-process`` (``sst1m.yaml``).

The run is the one shipped inside every protozfits installation: telescope 22,
23 August 2018, 32 events, of which 2 are pedestal (internally triggered)
events. Its 30 triggers are mostly night-sky-background fluctuations, not
showers: the cleaning must throw them away, and it does.
"""

from importlib.resources import files

import matplotlib.pyplot as plt
import numpy as np
import yaml
from ctapipe.calib import CameraCalibrator
from ctapipe.containers import EventType
from ctapipe.image import ImageProcessor
from ctapipe.io import EventSource
from ctapipe.visualization import CameraDisplay
from matplotlib.colors import ListedColormap
from traitlets.config import Config

# %%
# The configuration of ``ctapipe-process``, as Python components
# ---------------------------------------------------------------
#
# ``ctapipe-process --config sst1m.yaml`` builds a ``CameraCalibrator`` (the
# charge extraction: 7 samples around the local maximum) and an
# ``ImageProcessor`` (the ``SST1MImageCleaner`` and the image parameters) from
# the file; the same configuration object gives the same components here. The
# warnings below are about the file: its name has no run number, its header no
# target (the pointing is unknown), and its 2 pedestal events are too few for
# per-pixel picture thresholds (next example).

raw_file = files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz"
sst1m_yaml = files("ctapipe_sst1m") / "resources/sst1m.yaml"
config = Config(yaml.safe_load(sst1m_yaml.read_text()))

events = []
with EventSource(raw_file, config=config) as source:
    calibrate = CameraCalibrator(source.subarray, config=config)
    process_images = ImageProcessor(source.subarray, config=config)
    (tel_id,) = source.subarray.tel_ids
    geometry = source.subarray.tel[tel_id].camera.geometry
    for event in source:
        calibrate(event)
        process_images(event)
        dl1 = event.dl1.tel[tel_id]
        events.append(
            dict(
                event_id=event.index.event_id,
                pedestal=event.trigger.event_type == EventType.SKY_PEDESTAL,
                image=dl1.image,
                peak_time=dl1.peak_time,
                mask=dl1.image_mask,
            )
        )

triggered = [e for e in events if not e["pedestal"]]
n_kept = sum(e["mask"].any() for e in triggered)
print(f"{source.subarray.tel[tel_id]} (tel {tel_id}), {geometry.n_pixels} pixels")
print(f"{len(events)} events, {len(triggered)} triggered, {n_kept} left by the cleaning")

# %%
# The event with the most pixels left by the cleaning
# ---------------------------------------------------
#
# Every pixel holds a few photo-electrons even where there is no light from a
# shower: the extractor sums the 7 samples around the largest pulse of each
# pixel, and among DigiCam's 50 samples of 4 ns there is always a night-sky
# photon to find. This is why the picture threshold is 8 p.e. and why it rises
# with the NSB (see the next example). The peak times of the noise are spread
# over the whole readout window; the pixels of a real image arrive together,
# which the time cleaning (a selected neighbour within 8 ns) requires.

event = max(triggered, key=lambda e: e["mask"].sum())
mask = event["mask"]
print(
    f"event {event['event_id']}: {mask.sum()} pixels kept, "
    f"{event['image'][mask].sum():.0f} p.e. in them; "
    f"median pixel charge {np.median(event['image']):.1f} p.e."
)

fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
display = CameraDisplay(
    geometry, event["image"], ax=axes[0], title=f"charge, event {event['event_id']}"
)
display.add_colorbar(label="p.e.")
display.highlight_pixels(mask, color="cyan", linewidth=1.5)
display = CameraDisplay(
    geometry, event["peak_time"], ax=axes[1], title="peak time", cmap="RdBu_r"
)
display.add_colorbar(label="ns")
display = CameraDisplay(
    geometry,
    mask.astype(float),
    ax=axes[2],
    title="cleaning mask",
    cmap=ListedColormap(["0.85", "red"]),
)
display.set_limits_minmax(0, 1)

# %%
# What the cleaning does to the whole run
# ---------------------------------------
#
# The brightest pixel of each event and the number of pixels the cleaning
# keeps: one pixel above 8 p.e. is not enough, a picture pixel needs two
# neighbours above the 4 p.e. boundary threshold. Pedestal events (grey) look
# like the triggered ones: this run triggered on the NSB.

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for pedestal, label, color in [(False, "triggered", "C0"), (True, "pedestal", "grey")]:
    selected = [e for e in events if e["pedestal"] == pedestal]
    ax.scatter(
        [e["image"].max() for e in selected],
        [e["mask"].sum() for e in selected],
        color=color,
        label=label,
    )
ax.axvline(8.0, color="black", linestyle=":", label="lowest picture threshold")
ax.set_xlabel("brightest pixel of the event (p.e.)")
ax.set_ylabel("pixels kept by the cleaning")
ax.legend()
plt.show()
