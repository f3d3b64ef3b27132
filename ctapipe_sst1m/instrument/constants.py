"""Fixed numbers of the SST-1M telescopes and their DigiCam camera."""

import astropy.units as u
from ctapipe.instrument import FocalLengthKind

__all__ = [
    "DIGICAM_N_CHANNELS",
    "DIGICAM_N_PIXELS",
    "DIGICAM_N_SAMPLES",
    "DIGICAM_SAMPLING_RATE",
    "SST1M_FOCAL_LENGTH_CHOICE",
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

#: focal length of the camera frame in which the images of data and of
#: simulations become telescope-frame parameters (fov_lon, fov_lat, length, ...):
#: the equivalent one (5.600 m), as in sst1mpipe, whose models are trained on
#: parameters scaled by it; ctapipe's default, the effective one (5.697 m), would
#: make every angle 1.7 % smaller. Data and simulations must use the same one.
SST1M_FOCAL_LENGTH_CHOICE = FocalLengthKind.EQUIVALENT
