"""
Pedestal statistics read from a file, for the second pass of the recleaning.

ctapipe's `~ctapipe.io.HDF5MonitoringSource` replaces the whole camera
monitoring of each event with what its files hold. A file of pixel statistics
alone (``ctapipe-sst1m-pixel-statistics``) then takes away the outlier mask
`~ctapipe_sst1m.io.SST1MEventSource` gives every event (disabled, dead and badly
calibrated pixels): the CameraCalibrator no longer interpolates those pixels,
and their raw charges, hundreds of p.e. in the broken modules of the 2017 run,
reach the cleaning.
"""

from ctapipe.io import HDF5MonitoringSource

__all__ = ["SST1MHDF5MonitoringSource"]


class SST1MHDF5MonitoringSource(HDF5MonitoringSource):
    """
    ctapipe's HDF5MonitoringSource that keeps the event's calibration coefficients.

    Configured as ``HDF5MonitoringSource`` (``--HDF5MonitoringSource.input_files``).
    When the files hold no camera calibration coefficients, each event keeps
    the coefficients its event source gave it (the outlier mask of the SST-1M
    source); the pixel statistics and pointings come from the files as with
    ``HDF5MonitoringSource``.

    Raises
    ------
    ctapipe.exceptions.InputMissing
        If no input file is given.
    OSError
        If the files' subarrays do not match the event source's.
    """

    def fill_monitoring_container(self, event):
        """
        Fill the monitoring of ``event`` from the files, see
        `ctapipe.io.HDF5MonitoringSource.fill_monitoring_container`.
        """
        kept = {}
        if not self.has_camera_coefficients:
            for tel_id in self.subarray.tel_ids:
                if tel_id in event.monitoring.tel:
                    kept[tel_id] = event.monitoring.tel[tel_id].camera.coefficients
        super().fill_monitoring_container(event)
        for tel_id, coefficients in kept.items():
            event.monitoring.tel[tel_id].camera.coefficients = coefficients
