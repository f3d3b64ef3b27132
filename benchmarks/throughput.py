"""
Events per second of each processing stage, against the raw protozfits read rate.

All stages read the same input in the same run, so the ratios are comparable
across machines even when the absolute rates are not:

* ``protozfits``: the bare decode loop (open, iterate, touch every array used);
* ``source (R1 in ADC)``: SST1MEventSource iteration without the R1 calibration
  (checks, pixel order, R0, baseline-subtracted R1, trigger, pointing);
* ``source``: the same with R1 calibrated to photo-electrons (the default);
* ``source+calib``: plus ctapipe's CameraCalibrator (LocalPeakWindowSum 7/3);
* ``source+calib+image``: plus ImageProcessor (cleaning and Hillas parameters).

The stages use the shipped ``sst1m.yaml`` configuration.

Usage::

    python benchmarks/throughput.py [--input FILE] [--copies 20] [--repeat 3]

The input (default: the real DigiCam file shipped inside protozfits) is copied
``--copies`` times as the chunks of one run, so that one run is long enough to
time and memory can be watched over it.
"""

import argparse
import logging
import resource
import shutil
import statistics
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import protozfits
import yaml
from ctapipe.calib import CameraCalibrator
from ctapipe.image import ImageProcessor
from traitlets.config import Config

from ctapipe_sst1m.io import SST1MEventSource

log = logging.getLogger("throughput")

EMBEDDED = Path(
    str(files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz")
)
#: what users run: the shipped ctapipe-process configuration, plus a pointing so
#: that the AltAz computation is part of the measurement
CONFIG = Config(
    yaml.safe_load((files("ctapipe_sst1m") / "resources/sst1m.yaml").read_text())
)
CONFIG.SST1MEventSource.pointing_ra = 83.633
CONFIG.SST1MEventSource.pointing_dec = 22.0145
#: the run is made of copies of one file, which the source refuses by default
CONFIG.SST1MEventSource.allow_copied_chunks = True


def make_run(source_file, copies, directory):
    """Copy ``source_file`` as the chunks of one run; return the first chunk."""
    chunks = []
    for i in range(copies):
        chunk = directory / f"SST1M2_20180822_0001.{i:03d}.fits.fz"
        shutil.copyfile(source_file, chunk)
        chunks.append(chunk)
    return chunks


def raw_loop(chunks):
    """The bare protozfits decode loop; returns the number of events."""
    n = 0
    for chunk in chunks:
        with protozfits.File(str(chunk)) as zfile:
            for event in zfile.Events:
                waveforms = event.hiGain.waveforms
                _ = (
                    waveforms.samples,
                    waveforms.pixelsIndices,
                    waveforms.baselines,
                    event.pixels_flags,
                )
                n += 1
    return n


def source_loop(chunks, calibrate=False, image=False, calibrate_r1=True):
    """
    Iterate SST1MEventSource, optionally with ctapipe's stages.

    Returns the number of events and the seconds spent opening the source (the
    per-file checks: headers, size, checksum, first event), which are excluded
    from the timed loop and reported separately.
    """
    n = 0
    start = time.perf_counter()
    with SST1MEventSource(chunks[0], config=CONFIG, calibrate_r1=calibrate_r1) as source:
        setup = time.perf_counter() - start
        calibrator = (
            CameraCalibrator(source.subarray, config=CONFIG) if calibrate else None
        )
        processor = ImageProcessor(source.subarray, config=CONFIG) if image else None
        for event in source:
            if calibrator is not None:
                calibrator(event)
            if processor is not None:
                processor(event)
            n += 1
    return n, setup


def raw_loop_timed(chunks):
    """`raw_loop` with the same return signature as `source_loop`."""
    return raw_loop(chunks), 0.0


STAGES = {
    "protozfits": raw_loop_timed,
    "source (R1 in ADC)": lambda c: source_loop(c, calibrate_r1=False),
    "source": source_loop,
    "source+calib": lambda c: source_loop(c, calibrate=True),
    "source+calib+image": lambda c: source_loop(c, calibrate=True, image=True),
}


def measure(chunks, repeat):
    """
    Median events/s of every stage (stages interleaved in each repetition), and
    the median setup time per file of the source.
    """
    rates = {name: [] for name in STAGES}
    setups = []
    for _ in range(repeat):
        for name, loop in STAGES.items():
            start = time.perf_counter()
            n, setup = loop(chunks)
            rates[name].append(n / (time.perf_counter() - start - setup))
            if name == "source":
                setups.append(setup / len(chunks))
    return (
        {name: statistics.median(r) for name, r in rates.items()},
        statistics.median(setups),
        n,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=EMBEDDED, help="DigiCam raw file")
    parser.add_argument("--copies", type=int, default=20, help="chunks in the run")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ctapipe_sst1m").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        chunks = make_run(args.input, args.copies, Path(tmp))
        source_loop(chunks[:1])  # warm up imports, numba and file caches
        rates, setup, n_events = measure(chunks, args.repeat)
    raw = rates["protozfits"]
    print(
        f"input: {args.input.name} x {args.copies} = {n_events} events, "
        f"median of {args.repeat}"
    )
    print(f"{'stage':<22} {'events/s':>10} {'ratio to raw':>13}")
    for name, rate in rates.items():
        print(f"{name:<22} {rate:>10.0f} {rate / raw:>13.2f}")
    print(
        f"source setup: {setup * 1e3:.1f} ms per file (header, size and checksum "
        "checks, first event, pedestal look-ahead over the first 1000 events of "
        "the run; not in the rates above)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
