"""
The batch-farm path for real: dask-jobqueue's SLURMCluster on a single-node SLURM
(munged, slurmctld, slurmd of Debian's slurm-wlm) started by the test itself.

Skips with the reason where SLURM cannot run (not root, no apt-get, no network
for the install, a daemon that does not start); see ``tests/slurm.py``.
"""

import os
import socket
import sys
import time

import pytest

from .slurm import single_node_slurm

CLOSE_TIMEOUT = 20  # s for the cancelled jobs to leave squeue


def _worker_logs(directory):
    """The dask workers' job logs, for a failure message."""
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
        for path in sorted(directory.glob("*"))
    )


@pytest.mark.slow
def test_slurm_cluster_runs_one_worker_per_job(tmp_path):
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    distributed = pytest.importorskip("distributed")

    with single_node_slurm(tmp_path) as slurm:
        sinfo = slurm.command("sinfo", "-h", "-N", "-o", "%N %t %c").stdout.split()
        assert sinfo == [slurm.node, "idle", "2"]

        output = tmp_path / "hello.out"
        job = slurm.command(
            "sbatch",
            "--wait",
            "--parsable",
            f"--output={output}",
            "--wrap",
            "echo job $SLURM_JOB_ID on $SLURMD_NODENAME",
            timeout=60,
        )
        assert output.read_text() == f"job {job.stdout.strip()} on {slurm.node}\n"

        def whoami():
            # runs on a worker: which process, which SLURM job
            return os.getpid(), os.environ.get("SLURM_JOB_ID"), socket.gethostname()

        options = slurm.cluster_options(sys.executable, tmp_path)
        started = time.monotonic()
        with (
            dask_jobqueue.SLURMCluster(**options) as cluster,
            distributed.Client(cluster) as client,
        ):
            cluster.scale(2)
            try:
                client.wait_for_workers(2, timeout=60)
            except TimeoutError:
                pytest.fail(
                    f"2 workers did not connect within 60 s; squeue: "
                    f"{slurm.command('squeue').stdout}\n"
                    f"{_worker_logs(tmp_path / 'dask-logs')}"
                )
            workers_up = time.monotonic() - started
            # both jobs at once: the node's 2 CPUs are taken
            assert slurm.node_state() == "alloc"
            running = slurm.command("squeue", "-h", "-o", "%i %t").stdout.split("\n")
            submitted = {job.job_id for job in cluster.workers.values()}
            assert sorted(line.split() for line in running if line) == sorted(
                [job_id, "R"] for job_id in submitted
            )

            futures = [
                client.submit(whoami, workers=[address], pure=False)
                for address in client.scheduler_info()["workers"]
            ]
            results = client.gather(futures)
        closed = time.monotonic()

        pids = {pid for pid, _, _ in results}
        job_ids = {job_id for _, job_id, _ in results}
        assert len(pids) == 2
        assert job_ids == submitted
        assert len(job_ids) == 2
        assert {host for _, _, host in results} == {socket.gethostname()}
        assert os.getpid() not in pids

        deadline = closed + CLOSE_TIMEOUT
        while slurm.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slurm.jobs() == []
        print(
            f"slurm timings: {slurm.timings}; 2 workers up in {workers_up:.1f} s; "
            f"jobs gone {time.monotonic() - closed:.1f} s after close"
        )
