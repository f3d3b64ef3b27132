#!/usr/bin/env bash
# From raw data to a gammapy analysis, for a newcomer: the commands of the
# tutorial (docs: "Tutorial: from raw data to DL3"), runnable as they are.
#
#     bash docs/tutorial/tutorial.sh WORKDIR
#
# Needs the package installed (the README's setup; the scripts of .venv/bin on
# the PATH) and nothing else: the real DigiCam file shipped inside protozfits,
# and the package's toy simulation instead of an SST-1M simulation production.
# A few minutes on two cores. Every product lands in WORKDIR.
set -euo pipefail

workdir="${1:?usage: bash docs/tutorial/tutorial.sh WORKDIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$workdir"
cd "$workdir"
# the processing of the toy files runs two at a time (two cores)
jobs="${TUTORIAL_JOBS:-2}"

step() { printf '\n== %s\n' "$*"; }

step "1. The configuration files"
ctapipe-sst1m-quickstart --workdir analysis --name "A. Newcomer" --email newcomer@example.org

step "2. A real DigiCam run to DL1 (the file shipped inside protozfits)"
raw="$(python -c 'import pathlib, protozfits; print(pathlib.Path(protozfits.__file__).parent / "tests/resources/example_SST1M_20180822.fits.fz")')"
ctapipe-process --input "$raw" --config analysis/sst1m.yaml --output real.dl1.h5 --overwrite
ctapipe-sst1m-check real.dl1.h5

step "3. Toy simulations (training and IRF sets) and two observed-like wobble runs"
# The toy simulation stands in for sim_telarray here: files *.sst1mtoy are read
# by the package's ToySST1MEventSource (see ctapipe_sst1m.io.toy). Gammas of
# the IRFs come from a ring at the wobble offset (0.4 deg), protons are diffuse.
toy() {  # name particle showers seed obs_id [more YAML lines]
    printf 'particle: %s\nn_showers: %s\nseed: %s\nobs_id: %s\n%s' "$2" "$3" "$4" "$5" "${6:-}" >"$1.sst1mtoy"
}
toy gamma_energy gamma 3000 1 1
toy gamma_classifier gamma 3000 2 1
toy proton_classifier proton 8000 3 1
toy gamma_test gamma 10000 4 1 'ring: 0.4
'
toy proton_test proton 8000 5 1
# observed-like runs: a source at RA 200.4987, Dec 30.0422 (culminating at
# alt 70 deg over Ondrejov at 01:00 TAI), wobbles 0.4 deg north and south,
# 3 minutes each, with diffuse protons as background
for run in 1 2; do
    angle=$(( (run - 1) * 180 ))
    start=$([ "$run" = 1 ] && echo "2024-03-13T00:57:00" || echo "2024-03-13T01:00:00")
    toy "20240313000$run" gamma 9000 "1$run" "20240313000$run" "observed:
  ra: 200.4987
  dec: 30.0422
  start: '$start'
  wobble: 0.4
  wobble_angle: $angle
  protons: 4500
"
done

step "4. Toy simulations and observed runs to DL1 and stereo geometry (ctapipe-process)"
# simulations: sst1m_mc.yaml and the stereo reconstruction; the toy has no
# sim_telarray history to correct the PDE from (toy_simulation.yaml)
for name in gamma_energy gamma_classifier proton_classifier gamma_test proton_test; do
    echo "ctapipe-process $name"
    ctapipe-process --input "$name.sst1mtoy" --output "$name.dl1.h5" --overwrite --no-progress \
        --config analysis/sst1m_mc.yaml --config analysis/sst1m_mc_stereo.yaml \
        --config "$here/toy_simulation.yaml" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done
# observed runs: processed as data (sst1m.yaml)
for run in 202403130001 202403130002; do
    echo "ctapipe-process $run"
    ctapipe-process --input "$run.sst1mtoy" --output "$run.dl1.h5" --overwrite --no-progress \
        --config analysis/sst1m.yaml --config analysis/sst1m_mc_stereo.yaml &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done
wait

step "5. Train the energy regressor and the gamma/hadron classifier"
ctapipe-train-energy-regressor --config analysis/sst1m_train_energy.yaml \
    --input gamma_energy.dl1.h5 --output energy.pkl --overwrite
for name in gamma_classifier proton_classifier gamma_test proton_test 202403130001 202403130002; do
    ctapipe-apply-models --input "$name.dl1.h5" --reconstructor energy.pkl \
        --output "$name.energy.h5" --overwrite
done
ctapipe-train-particle-classifier --config analysis/sst1m_train_classifier.yaml \
    --signal gamma_classifier.energy.h5 --background proton_classifier.energy.h5 \
    --output classifier.pkl --overwrite
for name in gamma_test proton_test 202403130001 202403130002; do
    ctapipe-apply-models --input "$name.energy.h5" --reconstructor classifier.pkl \
        --output "$name.dl2.h5" --overwrite
done

step "6. Gammaness cuts and IRFs (full enclosure, from the test sets)"
ctapipe-optimize-event-selection --config analysis/sst1m_optimize_cuts.yaml \
    --gamma-file gamma_test.dl2.h5 --proton-file proton_test.dl2.h5 \
    --output cuts.fits --overwrite
mkdir -p irf
ctapipe-sst1m-compute-irf --config analysis/sst1m_irf.yaml \
    --config analysis/sst1m_irf_point_source.yaml --cuts cuts.fits \
    --gamma-file gamma_test.dl2.h5 --proton-file proton_test.dl2.h5 \
    --output irf/full_enclosure.fits.gz --benchmark-output irf/benchmarks.fits.gz --overwrite

step "7. DL3 of the observed runs"
ctapipe-sst1m-dl3 202403130001.dl2.h5 202403130002.dl2.h5 \
    --irf irf/full_enclosure.fits.gz --cuts cuts.fits --output-dir dl3 --overwrite

step "8. A gammapy analysis of the DL3"
python "$here/analysis.py" dl3
