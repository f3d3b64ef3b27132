"""
Per-pixel statistics and histograms of the pedestal images of a run of any length.

``ctapipe-calculate-pixel-statistics`` with the same options and configurations
(``sst1m_pedestal_statistics.yaml``, ``sst1m_pixel_charges.yaml``), but:

* a run with fewer images than a chunk is one chunk when the configuration
  allows it (``SizeChunking.allow_undersized_tables``, set in the shipped
  configurations). ctapipe 0.32's tool refuses such a run before the chunking
  sees it (``chunk_size`` larger than the table), and fails on
  ``chunk_size: null`` and on ``TimeChunking``, whatever the configuration;
* statistics (mean, median, std) of a chunk of fewer than ``min_events`` images
  are marked invalid, all pixels outliers, with one warning: ctapipe's
  HDF5MonitoringSource gives NaN for them, and SST1MImageCleaner its fixed
  thresholds, as a single pass does with too few pedestal events;
* the output is written under a hidden name and renamed when complete, so that
  a failed run leaves nothing under the final name (ctapipe 0.32's tool creates
  its output before it checks the chunk size, and a retry then stops on it).
"""

from pathlib import Path

import numpy as np
from astropy.table import vstack
from ctapipe.containers import EventType
from ctapipe.core import Provenance, Tool, ToolConfigurationError, traits
from ctapipe.exceptions import InputMissing
from ctapipe.io import HDF5Merger, write_table
from ctapipe.io.hdf5dataformat import (
    DL1_COLUMN_NAMES,
    DL1_PIXEL_HISTOGRAMS_GROUP,
    DL1_PIXEL_STATISTICS_GROUP,
)
from ctapipe.io.tableloader import TableLoader
from ctapipe.monitoring.calculator import PixelStatisticsCalculator

from ..calib.config_check import RangedInt
from ..calib.pedestal_charges import MIN_PEDESTAL_IMAGES, invalidate_small_chunks
from ..core.products import atomic_output, remove_stale_partials

__all__ = ["PixelStatisticsTool", "main"]

#: the image column the statistics are taken of
IMAGE_COLUMN = "image"


class PixelStatisticsTool(Tool):
    """
    Per-pixel statistics or histograms of the images of a DL1 file, by chunk.
    """

    name = "ctapipe-sst1m-pixel-statistics"
    description = __doc__
    examples = """
    ctapipe-sst1m-pixel-statistics -i RUN.pedestals.dl1.h5 \\
        --config sst1m_pedestal_statistics.yaml -o RUN.pedestal_stats.h5
    ctapipe-sst1m-pixel-statistics -i RUN.pedestals.dl1.h5 \\
        --config sst1m_pixel_charges.yaml -o RUN.pixel_charges.h5
    """

    output_path = traits.Path(
        directory_ok=False, help="Output file of the chunk statistics or histograms"
    ).tag(config=True)

    min_events = RangedInt(
        MIN_PEDESTAL_IMAGES,
        min=1,
        help=(
            "Statistics (mean, median, std) of a chunk of fewer images are marked "
            "invalid, all pixels outliers: HDF5MonitoringSource gives NaN for them "
            "and SST1MImageCleaner keeps its fixed thresholds. The same number as "
            "PedestalChargeMonitor.min_pedestal_images, for the same reason. "
            "Histograms are kept whatever their number of images."
        ),
    ).tag(config=True)

    aliases = {
        ("i", "input_url"): "TableLoader.input_url",
        ("o", "output_path"): "PixelStatisticsTool.output_path",
    }

    classes = [TableLoader, *traits.classes_with_traits(PixelStatisticsCalculator)]

    def setup(self):
        if self.output_path is None:
            raise ToolConfigurationError(
                "no output file given; set it with -o/--output_path"
            )
        self.output_path = Path(self.output_path)
        remove_stale_partials(self.output_path, self.log)
        self.check_output(self.output_path)
        try:
            self.loader = self.enter_context(TableLoader(parent=self, dl1_images=True))
        except InputMissing:
            raise ToolConfigurationError(
                "no input file given; set it with -i/--input_url"
            ) from None
        self.input_path = self.loader.input_url
        self.calculator = PixelStatisticsCalculator(
            parent=self, subarray=self.loader.subarray
        )

    def start(self):
        written = []
        with atomic_output(self.output_path) as partial:
            with HDF5Merger(
                parent=self,
                output_path=partial,
                simulation=False,
                r0_waveforms=False,
                r1_waveforms=False,
                dl1_images=False,
                processing_statistics=False,
                merge_strategy="events-single-ob",
            ) as merger:
                merger(self.input_path)
            for tel_id in self.loader.subarray.tel_ids:
                table = self.loader.read_telescope_events(telescopes=[tel_id])
                if len(table) == 0:
                    self.log.warning("%s: no images of tel %d", self.input_path, tel_id)
                    continue
                name = self._table_name(table, tel_id)
                result = self._aggregate(table, tel_id)
                group = (
                    DL1_PIXEL_HISTOGRAMS_GROUP
                    if "histogram" in result.colnames
                    else DL1_PIXEL_STATISTICS_GROUP
                )
                if group == DL1_PIXEL_STATISTICS_GROUP:
                    self._invalidate_small_chunks(result, tel_id)
                path = f"{group}/{name}/tel_{tel_id:03d}"
                write_table(result, partial, path)
                n_events = np.asarray(result["n_events"]).reshape(len(result), -1)
                written.append((path, len(result), n_events.max(axis=1).tolist()))
            if not written:
                raise ToolConfigurationError(
                    f"{self.input_path}: no images of any telescope, nothing to "
                    "compute; give the DL1 file of a run's pedestal events "
                    "(ctapipe-process with sst1m_pedestals.yaml)"
                )
        Provenance().add_output_file(str(self.output_path), role="DL1/Monitoring")
        for path, n_chunks, n_events in written:
            self.log.info(
                "%s: %s, %d chunks of %s images",
                self.output_path,
                path,
                n_chunks,
                n_events,
            )

    def _table_name(self, table, tel_id):
        """``<event type>_image`` as ctapipe's tool names it; one type only."""
        types = np.unique(table["event_type"])
        if len(types) > 1:
            names = ", ".join(EventType(t).name for t in types)
            raise ToolConfigurationError(
                f"{self.input_path}: tel {tel_id} has images of several event types "
                f"({names}), whose statistics would mix; select one with "
                "EventTypeFilter.allowed_types in ctapipe-process "
                "(sst1m_pedestals.yaml keeps SKY_PEDESTAL)"
            )
        return f"{EventType(types[0]).name.lower()}_{IMAGE_COLUMN}"

    def _aggregate(self, table, tel_id):
        """First pass over the chunks, second around faulty ones, as ctapipe's tool."""
        for column in DL1_COLUMN_NAMES:
            # single gain: (n_events, n_pixels) -> (n_events, 1, n_pixels)
            if column in table.colnames and table[column].ndim == 2:
                table[column] = table[column][:, np.newaxis]
        aggregator = self.calculator.stats_aggregators[
            self.calculator.stats_aggregator_type.tel[tel_id]
        ]
        chunking = aggregator.chunking
        chunk_size = getattr(chunking, "chunk_size", None)
        shorter = chunk_size is not None and len(table) < chunk_size
        if shorter and not chunking.allow_undersized_tables:
            kind = type(chunking).__name__
            raise ToolConfigurationError(
                f"{self.input_path}: tel {tel_id} has {len(table)} images, fewer "
                f"than {kind}.chunk_size = {chunk_size}; set "
                f"{kind}.allow_undersized_tables to true (the run as one chunk) or "
                f"{kind}.chunk_size to at most {len(table)}"
            )
        result = self.calculator.first_pass(
            table=table, tel_id=tel_id, col_name=IMAGE_COLUMN
        )
        # ctapipe's second pass counts in rows of whole chunks: size chunking only
        if chunk_size is None or shorter or not (chunking.chunk_shift or 0) > 0:
            return result
        if np.all(result["is_valid"]):
            return result
        second = self.calculator.second_pass(
            table=table,
            valid_chunks=result["is_valid"].data,
            tel_id=tel_id,
            col_name=IMAGE_COLUMN,
        )
        result = vstack([result, second])
        result.sort(["time_start"])
        return result

    def _invalidate_small_chunks(self, statistics, tel_id):
        small = invalidate_small_chunks(statistics, self.min_events)
        if small.any():
            n_events = np.asarray(statistics["n_events"])[small]
            n_events = sorted(set(n_events.reshape(len(n_events), -1).max(axis=1)))
            self.log.warning(
                "%s: tel %d: %d of %d chunks hold fewer than %d images (%s): marked "
                "invalid, the cleaning keeps its fixed picture thresholds there; set "
                "PixelStatisticsTool.min_events to use fewer",
                self.input_path,
                tel_id,
                small.sum(),
                len(small),
                self.min_events,
                ", ".join(map(str, n_events)),
            )

    def finish(self):
        """Nothing left: the output is complete when start returns."""


def main():
    PixelStatisticsTool().run()


if __name__ == "__main__":
    main()
