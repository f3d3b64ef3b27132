"""
Picture thresholds that follow the night-sky background
=======================================================

A pixel looking at a bright star, or at a brighter part of the sky, sees more
night-sky-background (NSB) photons than its neighbours, and its charge
fluctuates more. With one picture threshold for the whole camera such pixels
would seed fake images; ``SST1MImageCleaner`` (sst1mpipe's cleaning) raises the
picture threshold of each pixel to ``mean + 2.5 x std`` of its charge in the
run's pedestal events, never below the fixed 8 p.e.

``SST1MEventSource`` extracts the charges of the pedestal events (internally
triggered, no shower) like those of the showers and, once it has enough of
them (``PedestalChargeMonitor.min_pedestal_images``), puts their mean and
standard deviation per pixel into every event's monitoring
(``monitoring.tel[tel_id].camera.pixel_statistics.pedestal_image``), where the
cleaner reads them.
"""

from importlib.resources import files

import matplotlib.pyplot as plt
import numpy as np
import yaml
from ctapipe.image import ImageProcessor
from ctapipe.io import EventSource
from ctapipe.visualization import CameraDisplay
from traitlets.config import Config

from ctapipe_sst1m.image import picture_thresholds

raw_file = files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz"
sst1m_yaml = files("ctapipe_sst1m") / "resources/sst1m.yaml"
config = Config(yaml.safe_load(sst1m_yaml.read_text()))


def first_event(config):
    """The first event of the run, the source's pedestal monitor and the cleaner."""
    with EventSource(raw_file, config=config, max_events=1) as source:
        event = next(iter(source))
        cleaner = ImageProcessor(source.subarray, config=config).clean
        return event, source.pedestal_charges, cleaner


# %%
# Too few pedestal events in this run
# -----------------------------------
#
# The source reads the pedestal events among the first 1000 events of the run
# before it yields the first event, so that the first showers are cleaned like
# the later ones. The 2018 run shipped inside protozfits has 2 pedestal events
# in its 32: fewer than the shipped configuration needs, so the source gives
# no statistics (with a warning) and the cleaner keeps 8 p.e. in every pixel.
# A whole run has far more; the statistics follow the latest 1000 of them
# (``PedestalChargeMonitor.max_pedestal_images``, as in sst1mpipe).

event, monitor, cleaner = first_event(config)
(tel_id,) = cleaner.subarray.tel_ids
geometry = cleaner.subarray.tel[tel_id].camera.geometry
n_pedestals = monitor.n_images(tel_id)
statistics = event.monitoring.tel[tel_id].camera.pixel_statistics.pedestal_image
print(f"{n_pedestals} pedestal events, at least {monitor.min_pedestal_images} needed")
print("statistics in the event's monitoring:", statistics.std is not None)

# %%
# What two pedestal events would give
# -----------------------------------
#
# To see the mechanism on this file, the minimum is lowered to its 2 pedestal
# events. A few pixels then get a threshold above 8 p.e.: pixels whose two
# pedestal charges differ by chance, or which see more light.

config.merge(Config({"PedestalChargeMonitor": {"min_pedestal_images": n_pedestals}}))
event, monitor, cleaner = first_event(config)
statistics = event.monitoring.tel[tel_id].camera.pixel_statistics.pedestal_image
# DigiCam has one gain channel: statistics are (1, n_pixels)
mean, std = statistics.mean[0], statistics.std[0]
print(f"median pixel: mean {np.median(mean):.2f} p.e., std {np.median(std):.2f} p.e.")

# the NSB level (mean pedestal charge over the camera) selects the settings
# (SST1MImageCleaner.nsb_bins); picture_thresholds is what the cleaner applies
settings = cleaner.settings(tel_id, np.nanmean(mean))
fixed, scaling = settings["picture_threshold_pe"], settings["stdev_scaling"]
thresholds = picture_thresholds(fixed, scaling, mean, std)
above = thresholds > fixed
print(f"{above.sum()} pixels above {fixed} p.e., up to {thresholds.max():.1f} p.e.")

fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
display = CameraDisplay(geometry, std, ax=axes[0], title="std of the pedestal charge")
display.add_colorbar(label="p.e.")
display = CameraDisplay(
    geometry, thresholds, ax=axes[1], title="picture threshold", cmap="viridis"
)
display.add_colorbar(label="p.e.")
display.highlight_pixels(above, color="red", linewidth=1)

# %%
# Why two are too few
# -------------------
#
# ``mean + 2.5 x std`` is below 8 p.e. in most pixels: the fixed threshold
# applies there, and only the pixels right of the dotted line get their own.
# But the standard deviation of two charges is half their difference: from n
# events it is known to about ``1 / sqrt(2 (n - 1))`` of itself, 71 % here, 10 %
# from the 50 events the shipped configuration asks for. The broad spread
# below is mostly that chance; with enough pedestal events it shrinks to the
# real differences between pixels.

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
raised = mean + scaling * std
bins = np.linspace(0, max(raised.max(), fixed) + 1, 60)
ax.hist(raised, bins=bins, histtype="step", label=f"mean + {scaling} std")
ax.hist(thresholds, bins=bins, histtype="stepfilled", alpha=0.4, label="threshold")
ax.axvline(fixed, color="black", linestyle=":", label=f"fixed threshold ({fixed} p.e.)")
ax.set_yscale("log")
ax.set_xlabel("p.e.")
ax.set_ylabel("pixels")
ax.legend()
plt.show()
