"""Fixed numbers of the SST-1M telescopes and their DigiCam camera."""

import astropy.units as u

__all__ = [
    "DIGICAM_N_CHANNELS",
    "DIGICAM_N_PIXELS",
    "DIGICAM_N_SAMPLES",
    "DIGICAM_SAMPLING_RATE",
    "SST1M_SUBARRAY_NAME",
    "SST1M_TELESCOPE_TYPE",
    "SST1M_TEL_IDS",
]

#: tel ids of the two SST-1M telescopes at Ondřejov (SST1M-1, SST1M-2) in real data
SST1M_TEL_IDS = (21, 22)
#: name of the SubarrayDescription of the two telescopes
SST1M_SUBARRAY_NAME = "SST1M_miniarray"
#: ``str(TelescopeDescription)`` of an SST-1M telescope (size type, optics, camera)
SST1M_TELESCOPE_TYPE = "SST_1M_DigiCam"
#: hexagonal pixels of the camera (108 modules of 12 pixels)
DIGICAM_N_PIXELS = 1296
#: waveform samples per pixel and event (200 ns)
DIGICAM_N_SAMPLES = 50
#: waveform sampling rate (4 ns per sample)
DIGICAM_SAMPLING_RATE = 0.25 * u.GHz
#: gain channels: DigiCam has a single gain
DIGICAM_N_CHANNELS = 1
