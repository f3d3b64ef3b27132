"""
A toy simulation of SST-1M showers, for tests and tutorials.

It ships with the package (and is registered as a ctapipe event source) so that
a newcomer, who has no SST-1M simulation production, can run the whole chain to
DL3 in minutes: ``ctapipe-process --input gamma.sst1mtoy ...``. The real
SST-1M simulations (sim_telarray) replace it in an analysis.

`ToySST1MEventSource` reads a small YAML file (``*.sst1mtoy``: particle,
number of showers, seed, obs_id) and yields simulated two-telescope events
with the real SST-1M subarray (tel 21 and 22, as in data), so that stock
``ctapipe-process``, the training, cut optimisation and IRF tools can be run on
thousands of events. It is *not* a physics simulation:

* showers are straight lines through the core with the true direction;
  point-like gammas from the pointing direction, diffuse protons within
  ``viewcone`` deg; power-law energies; cores uniform within ``max_scatter``;
* each telescope sees a 2D Gaussian (``ctapipe.image.toymodel``) centred on
  the projection of the shower point at ``h_max`` (falling with energy),
  elongated along the projection of the shower axis (found with ctapipe's
  frames), with intensity proportional to energy and falling with impact
  distance beyond 120 m, Poisson NSB of 0.5 p.e. and a time gradient;
  protons are wider, dimmer and misaligned by a random angle, but for a
  fraction ``GAMMA_LIKE_PROTONS`` whose images are shaped like gammas';
* a telescope triggers if the signal reaches 40 p.e.; events with at least
  one triggered telescope are yielded, all showers enter the simulated
  shower distribution, as sim_telarray writes it.

Simulations point at alt 70 deg, az 180 deg, or where ``pointing: {alt: ..,
az: ..}`` (deg) says (IRF nodes at other zenith angles). The impact distance
is measured in the shower plane over cores uniform on the ground, so the
effective area grows with the zenith angle as real ones do (by about 20 % from
10 to 30 deg on the toy chain).

With ``observed: {ra: .., dec: .., start: ..}`` in the file, the events look
like observed data instead: no simulation information, an ICRS observation
block on the tracked position, which the telescopes track from Ondrejov (the
pointing and the showers' directions follow the sky with the event times).
Optional keys of ``observed``:

* ``wobble`` (deg) and ``wobble_angle`` (deg, position angle from north):
  the telescopes track a position that far from the source (ra, dec), which
  is where the gammas come from; the observation block holds the tracked
  position, as the TARGET header of a real wobble run does;
* ``protons``: that many diffuse protons (the particle's viewcone around the
  pointing) at random times over the run, as a background; gammas keep one
  shower every 0.02 s, so the gamma flux does not change.
"""

import copy
from pathlib import Path

import astropy.units as u
import numpy as np
import yaml
from astropy.coordinates import AltAz, SkyCoord
from astropy.time import Time
from ctapipe.containers import (
    ArrayEventContainer,
    CoordinateFrameType,
    DL1CameraContainer,
    EventIndexContainer,
    EventType,
    ObservationBlockContainer,
    ObservationBlockState,
    ObservingMode,
    PointingMode,
    SchedulingBlockContainer,
    SchedulingBlockType,
    SimulatedCameraContainer,
    SimulatedEventContainer,
    SimulatedShowerContainer,
    SimulatedShowerDistribution,
    SimulationConfigContainer,
    TelescopeImpactParameterContainer,
)
from ctapipe.coordinates import CameraFrame
from ctapipe.image.toymodel import Gaussian, obtain_time_image
from ctapipe.io import DataLevel, EventSource

from ..instrument import load_sst1m_subarray
from ..version import __version__

__all__ = [
    "ToySST1MEventSource",
    "__version__",
    "injected_gamma_flux",
    "write_toy_config",
]

POINTING_ALT = 70 * u.deg
POINTING_AZ = 180 * u.deg
PARTICLES = {
    # primary id, energy range (TeV), viewcone (deg), p.e. per TeV, scale of
    # width and length, misalignment of the image axis (deg, rms)
    "gamma": dict(pid=0, e_min=0.3, e_max=100, viewcone=0, pe=220, size=1.0, tilt=0),
    "proton": dict(pid=101, e_min=0.6, e_max=200, viewcone=2, pe=90, size=1.6, tilt=15),
}
#: fraction of the protons whose images look like gammas' (showers dominated by
#: an early pi0): they pass the gammaness cut, so that the cuts leave a
#: background to model and to subtract
GAMMA_LIKE_PROTONS = 0.2
SPECTRAL_INDEX = -2.0
MAX_SCATTER = 700.0
TRIGGER_PE = 40.0
NSB_PE = 0.5
START = Time("2024-03-12T00:00:00", scale="tai")
EVENT_STEP = 0.02 * u.s


def injected_gamma_flux(reference=1 * u.TeV):
    """
    Differential flux at ``reference`` of the observed-like runs' gammas.

    One shower every `EVENT_STEP` over the ``MAX_SCATTER`` disc, with a power
    law of index `SPECTRAL_INDEX` between the gammas' energy bounds.

    Returns
    -------
    astropy.units.Quantity
        cm-2 s-1 TeV-1.
    """
    gamma = PARTICLES["gamma"]
    a = SPECTRAL_INDEX + 1
    e0 = reference.to_value(u.TeV)
    # integral of (E / E0)^index over the simulated range, in TeV
    integral = e0 * ((gamma["e_max"] / e0) ** a - (gamma["e_min"] / e0) ** a) / a
    area = np.pi * (MAX_SCATTER * u.m) ** 2
    flux = 1 / (EVENT_STEP * area * integral * u.TeV)
    return flux.to(u.Unit("cm-2 s-1 TeV-1"))


def write_toy_config(
    path, particle, n_showers, seed, obs_id=1, observed=None, ring=None, pointing=None
):
    """Write the ``*.sst1mtoy`` file the source reads.

    ``observed``: dict(ra=deg, dec=deg, start=ISO time TAI) for observed-like runs.
    ``ring``: simulated gammas from a ring this far (deg) from the pointing.
    ``pointing``: (alt, az) in deg of simulations, default (70, 180).
    """
    path = Path(path)
    config = dict(particle=particle, n_showers=n_showers, seed=seed, obs_id=obs_id)
    if observed is not None:
        config["observed"] = observed
    if ring is not None:
        config["ring"] = ring
    if pointing is not None:
        config["pointing"] = dict(alt=float(pointing[0]), az=float(pointing[1]))
    path.write_text(yaml.safe_dump(config))
    return path


class ToySST1MEventSource(EventSource):
    """Toy SST-1M gammas and protons from ``*.sst1mtoy`` files, for tests and tutorials.

    See the module docstring.
    """

    def __init__(self, input_url=None, config=None, parent=None, **kwargs):
        super().__init__(input_url=input_url, config=config, parent=parent, **kwargs)
        settings = yaml.safe_load(Path(self.input_url).read_text())
        self.particle = PARTICLES[settings["particle"]]
        self.rng = np.random.default_rng(settings["seed"])
        self._obs_id = int(settings["obs_id"])
        self._subarray = load_sst1m_subarray()
        if self.allowed_tels:
            self._subarray = self._subarray.select_subarray(self.allowed_tels)
        self.observed = settings.get("observed")
        #: simulations: gammas from a ring this far from the pointing (deg)
        self.ring = float(settings.get("ring", 0.0))
        #: simulations: the fixed pointing (IRF nodes at other zenith angles)
        pointing = settings.get("pointing", {})
        self.pointing_alt = u.Quantity(pointing.get("alt", POINTING_ALT), u.deg)
        self.pointing_az = u.Quantity(pointing.get("az", POINTING_AZ), u.deg)
        self.metadata["is_simulation"] = self.observed is None
        self.start = START
        # (particle, number of showers) of the run
        self.components = [(self.particle, int(settings["n_showers"]))]
        if self.observed is not None:
            self.start = Time(self.observed["start"], scale="tai")
            self.source = SkyCoord(self.observed["ra"], self.observed["dec"], unit="deg")
            self.target = self.source.directional_offset_by(
                self.observed.get("wobble_angle", 0) * u.deg,
                self.observed.get("wobble", 0) * u.deg,
            )
            if self.observed.get("protons"):
                n_protons = int(self.observed["protons"])
                self.components.append((PARTICLES["proton"], n_protons))
        self.n_showers = sum(n for _, n in self.components)
        self.kind, self.times = self._shower_times()
        self.pointing = self._pointing()
        self._showers = self._draw_showers()
        # ctapipe-process gives max_events to its progress bar as the total.
        # Which showers trigger is only known by drawing their images, which
        # costs as much as the simulation: counted only for a tool showing a bar
        if getattr(self.parent, "progress_bar", False):
            n_events = self.count_events()
            if n_events and (not self.max_events or self.max_events > n_events):
                self.max_events = n_events

    @staticmethod
    def is_compatible(file_path):
        return Path(file_path).suffix == ".sst1mtoy"

    @property
    def is_simulation(self):
        return self.observed is None

    def _shower_times(self):
        """Component index and time of every shower, in time order."""
        (_, n_first), *others = self.components
        duration = n_first * EVENT_STEP.to_value(u.s)
        kinds = [np.zeros(n_first, dtype=int)]
        offsets = [np.arange(n_first) * EVENT_STEP.to_value(u.s)]
        for index, (_, n) in enumerate(others, start=1):
            kinds.append(np.full(n, index))
            offsets.append(self.rng.uniform(0, duration, n))
        kind, offset = np.concatenate(kinds), np.concatenate(offsets)
        order = np.argsort(offset, kind="stable")
        return kind[order], self.start + offset[order] * u.s

    def _pointing(self):
        """AltAz pointing at each shower's time (fixed for simulations)."""
        if self.observed is None:
            n = self.n_showers
            return SkyCoord(
                alt=np.full(n, self.pointing_alt.to_value(u.deg)) * u.deg,
                az=np.full(n, self.pointing_az.to_value(u.deg)) * u.deg,
                frame=AltAz(),
            )
        altaz = self._altaz(self.target)
        # the telescopes' own frames carry no time or location
        return SkyCoord(alt=altaz.alt, az=altaz.az, frame=AltAz())

    def _altaz(self, position):
        frame = AltAz(obstime=self.times, location=self.subarray.reference_location)
        return position.transform_to(frame)

    @property
    def subarray(self):
        return self._subarray

    @property
    def datalevels(self):
        return (DataLevel.DL1_IMAGES,)

    @property
    def obs_ids(self):
        return [self._obs_id]

    @property
    def simulation_config(self):
        if self.observed is not None:
            return None
        viewcone = self.particle["viewcone"]
        return {
            self._obs_id: SimulationConfigContainer(
                run_number=np.int32(self._obs_id),
                energy_range_min=self.particle["e_min"] * u.TeV,
                energy_range_max=self.particle["e_max"] * u.TeV,
                prod_site_alt=500 * u.m,
                spectral_index=SPECTRAL_INDEX,
                n_showers=np.uint64(self.n_showers),
                shower_reuse=np.uint32(1),
                max_alt=self.pointing_alt.to(u.rad),
                min_alt=self.pointing_alt.to(u.rad),
                max_az=self.pointing_az.to(u.rad),
                min_az=self.pointing_az.to(u.rad),
                diffuse=viewcone > 0,
                max_viewcone_radius=max(viewcone, self.ring) * u.deg,
                min_viewcone_radius=self.ring * u.deg,
                max_scatter_range=MAX_SCATTER * u.m,
                min_scatter_range=0 * u.m,
                core_pos_mode=1,
            )
        }

    @property
    def observation_blocks(self):
        if self.observed is not None:
            return {
                self._obs_id: ObservationBlockContainer(
                    obs_id=np.uint64(self._obs_id),
                    sb_id=np.uint64(self._obs_id),
                    producer_id="toy observation",
                    state=ObservationBlockState.COMPLETED_SUCCEDED,
                    subarray_pointing_lat=self.target.dec,
                    subarray_pointing_lon=self.target.ra,
                    subarray_pointing_frame=CoordinateFrameType.ICRS,
                    actual_start_time=self.start,
                    scheduled_start_time=self.start,
                )
            }
        return {
            self._obs_id: ObservationBlockContainer(
                obs_id=np.uint64(self._obs_id),
                sb_id=np.uint64(self._obs_id),
                producer_id="toy simulation",
                state=ObservationBlockState.COMPLETED_SUCCEDED,
                subarray_pointing_lat=self.pointing_alt,
                subarray_pointing_lon=self.pointing_az,
                subarray_pointing_frame=CoordinateFrameType.ALTAZ,
                actual_start_time=self.start,
                scheduled_start_time=self.start,
            )
        }

    @property
    def scheduling_blocks(self):
        return {
            self._obs_id: SchedulingBlockContainer(
                sb_id=np.uint64(self._obs_id),
                sb_type=SchedulingBlockType.OBSERVATION,
                producer_id="toy simulation",
                observing_mode=ObservingMode.UNKNOWN,
                pointing_mode=(
                    PointingMode.DRIFT if self.observed is None else PointingMode.TRACK
                ),
            )
        }

    @property
    def simulated_shower_distributions(self):
        if self.observed is not None:
            return {}
        showers = self._showers
        distance = np.hypot(showers["core_x"], showers["core_y"])
        bins_energy = np.geomspace(self.particle["e_min"], self.particle["e_max"], 31)
        bins_core = np.linspace(0, MAX_SCATTER, 15)
        histogram, _, _ = np.histogram2d(
            showers["energy"], distance, bins=[bins_energy, bins_core]
        )
        return {
            self._obs_id: SimulatedShowerDistribution(
                obs_id=self._obs_id,
                hist_id=1,
                n_entries=self.n_showers,
                bins_energy=bins_energy * u.TeV,
                bins_core_dist=bins_core * u.m,
                histogram=histogram,
            )
        }

    def _particle_values(self, key):
        """A particle property for every shower."""
        values = np.array([p[key] for p, _ in self.components], dtype=float)
        return values[self.kind]

    def _draw_showers(self):
        """Energies, directions, cores and images' geometry of all showers."""
        rng, n = self.rng, self.n_showers
        a = SPECTRAL_INDEX + 1
        e_min, e_max = self._particle_values("e_min"), self._particle_values("e_max")
        u01 = rng.random(n)
        energy = (e_min**a + u01 * (e_max**a - e_min**a)) ** (1 / a)
        radius = MAX_SCATTER * np.sqrt(rng.random(n))
        phi = rng.uniform(0, 2 * np.pi, n)
        # directions: uniform within the viewcone around the pointing
        viewcone = np.radians(self._particle_values("viewcone"))
        offset = np.degrees(np.arccos(1 - rng.random(n) * (1 - np.cos(viewcone))))
        if self.ring:
            offset[:] = self.ring
        direction = self.pointing.directional_offset_by(
            rng.uniform(0, 360, n) * u.deg, offset * u.deg
        )
        if self.observed is not None:
            # observed gammas come from the source, wherever the pointing is
            gamma = self._particle_values("pid") == PARTICLES["gamma"]["pid"]
            source = self._altaz(self.source)
            alt = np.where(gamma, source.alt.deg, direction.alt.deg)
            az = np.where(gamma, source.az.deg, direction.az.deg)
            direction = SkyCoord(alt=alt * u.deg, az=az * u.deg, frame=AltAz())
        showers = dict(
            energy=energy,
            core_x=radius * np.cos(phi),
            core_y=radius * np.sin(phi),
            alt=direction.alt.to_value(u.rad),
            az=direction.az.to_value(u.rad),
            h_max=np.clip(10_000 - 1_000 * np.log10(energy), 6_000, 12_000),
            gamma_like=(self._particle_values("pid") == PARTICLES["proton"]["pid"])
            & (rng.random(n) < GAMMA_LIKE_PROTONS),
        )
        showers["images"] = {
            tel_id: self._project(showers, tel_id) for tel_id in self.subarray.tel_ids
        }
        return showers

    def _project(self, showers, tel_id):
        """Camera position of the shower maximum and axis angle, impact distance."""
        # shower axis in ground coordinates (x north, y west, z up)
        alt, az = showers["alt"], showers["az"]
        axis = np.stack(
            [np.cos(alt) * np.cos(az), -np.cos(alt) * np.sin(az), np.sin(alt)], 1
        )
        core = np.stack([showers["core_x"], showers["core_y"], np.zeros_like(alt)], 1)
        position = self.subarray.tel_coords[self.subarray.tel_index_array[tel_id]]
        tel = np.array([position.x.to_value(u.m), position.y.to_value(u.m), 0.0])
        to_tel = tel - core
        # row-wise dot products (a matrix product's diagonal took n^2 memory:
        # 13 GB for 40000 showers)
        along = np.einsum("ij,ij->i", to_tel, axis)
        impact = np.linalg.norm(to_tel - along[:, None] * axis, axis=1)

        points = []
        for height in (showers["h_max"], showers["h_max"] + 2_000):
            point = core + axis * (height / np.sin(alt))[:, None] - tel
            points.append(point)
        camera = CameraFrame(
            telescope_pointing=self.pointing,
            focal_length=self.subarray.tel[tel_id].optics.equivalent_focal_length,
        )
        xy = []
        for point in points:
            # direction from the telescope (ground frame: x north, y west, z up)
            seen = SkyCoord(
                alt=np.arctan2(point[:, 2], np.hypot(point[:, 0], point[:, 1])) * u.rad,
                az=np.arctan2(-point[:, 1], point[:, 0]) * u.rad,
                frame=AltAz(),
            )
            cam = seen.transform_to(camera)
            xy.append(np.stack([cam.x.to_value(u.m), cam.y.to_value(u.m)], 1))
        delta = xy[1] - xy[0]
        return dict(
            x=xy[0][:, 0],
            y=xy[0][:, 1],
            psi=np.arctan2(delta[:, 1], delta[:, 0]),
            elongation=np.hypot(delta[:, 0], delta[:, 1]),
            impact=impact,
        )

    def count_events(self):
        """
        The number of events the run yields: the showers that trigger.

        Their images are drawn with a copy of the random generator, so that the
        events yielded afterwards are the same as without counting.

        Returns
        -------
        int
        """
        rng = copy.deepcopy(self.rng)
        return sum(
            1
            for i in range(self.n_showers)
            if self._images(i, self._showers, self.components[self.kind[i]][0], rng)
        )

    def _generator(self):
        showers, rng = self._showers, self.rng
        counter = 0
        for i in range(self.n_showers):
            if self.max_events is not None and counter >= self.max_events:
                break
            p = self.components[self.kind[i]][0]
            event = self._event(i, showers, p, rng)
            if event is None:
                continue
            event.count = counter
            counter += 1
            yield event

    def _images(self, i, showers, p, rng):
        """The images of shower ``i`` in the telescopes it triggers."""
        images = {}
        for tel_id in self.subarray.tel_ids:
            geometry = self.subarray.tel[tel_id].camera.geometry
            image = showers["images"][tel_id]
            falloff = np.exp(-max(image["impact"][i] - 120, 0) / 80)
            mean_pe = p["pe"] * showers["energy"][i] * falloff
            shape = PARTICLES["gamma"] if showers["gamma_like"][i] else p
            intensity = mean_pe * rng.lognormal(0, 0.25)
            if intensity < 5:
                continue
            width = 0.012 * shape["size"] * (1 + 0.15 * np.log10(showers["energy"][i]))
            length = max(0.5 * image["elongation"][i], 0.02) * np.sqrt(shape["size"])
            psi = image["psi"][i] + np.radians(rng.normal(0, 1) * shape["tilt"])
            model = Gaussian(
                x=image["x"][i] * u.m,
                y=image["y"][i] * u.m,
                length=length * u.m,
                width=width * u.m,
                psi=psi * u.rad,
            )
            values, signal, _ = model.generate_image(
                geometry, intensity=intensity, nsb_level_pe=NSB_PE, rng=rng
            )
            if signal.sum() < TRIGGER_PE:
                continue
            peak_time = obtain_time_image(
                geometry.pix_x,
                geometry.pix_y,
                image["x"][i] * u.m,
                image["y"][i] * u.m,
                psi * u.rad,
                (20 + image["impact"][i] / 5) * u.ns / u.m,
                20 * u.ns,
            ) + rng.normal(0, 0.5, geometry.n_pixels)
            images[tel_id] = (values, signal, peak_time, image["impact"][i])
        return images

    def _event(self, i, showers, p, rng):
        images = self._images(i, showers, p, rng)
        if not images:
            return None

        event = ArrayEventContainer()
        event.index = EventIndexContainer(obs_id=self._obs_id, event_id=i + 1)
        time = self.times[i]
        event.trigger.time = time
        event.trigger.event_type = EventType.SUBARRAY
        event.trigger.tels_with_trigger = np.array(sorted(images))
        alt = self.pointing.alt[i].to(u.rad)
        az = self.pointing.az[i].to(u.rad)
        event.monitoring.pointing.array_altitude = alt
        event.monitoring.pointing.array_azimuth = az
        for tel_id, (values, _, peak_time, _) in images.items():
            event.trigger.tel[tel_id].time = time
            event.monitoring.tel[tel_id].pointing.altitude = alt
            event.monitoring.tel[tel_id].pointing.azimuth = az
            event.dl1.tel[tel_id] = DL1CameraContainer(
                image=values.astype(np.float32),
                peak_time=peak_time.astype(np.float32),
            )
        if self.observed is not None:
            return event

        event.simulation = SimulatedEventContainer()
        event.simulation.shower = SimulatedShowerContainer(
            energy=showers["energy"][i] * u.TeV,
            alt=showers["alt"][i] * u.rad,
            az=showers["az"][i] * u.rad,
            core_x=showers["core_x"][i] * u.m,
            core_y=showers["core_y"][i] * u.m,
            h_first_int=(showers["h_max"][i] + 2_000) * u.m,
            x_max=300 * u.g / u.cm**2,
            shower_primary_id=p["pid"],
            starting_grammage=0 * u.g / u.cm**2,
        )
        for tel_id, (_, signal, _, impact) in images.items():
            event.simulation.tel[tel_id] = SimulatedCameraContainer(
                true_image=signal.astype(np.int32),
                true_image_sum=np.int32(signal.sum()),
                impact=TelescopeImpactParameterContainer(
                    distance=impact * u.m, prefix="true_impact"
                ),
            )
        return event
