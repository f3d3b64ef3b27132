"""
A single-node SLURM cluster for the tests: Debian's munged, slurmctld and slurmd
run as root on this host, with a configuration of their own.

Everything the daemons read or write (munge key, ``slurm.conf``, state, spool,
logs, sockets, pid files) lives under the work directory handed to
:func:`single_node_slurm` (the sockets and the spool in a temporary directory of
their own where that path is too long for a unix socket). No ``cgroup.conf`` is
needed: with proctrack/linuxproc and task/none, slurm 22.05 loads no cgroup
plugin.

The daemons and the clients (``sinfo``, ``sbatch``, dask-jobqueue's calls) find
``slurm.conf`` through the ``SLURM_CONF`` environment variable, never
``/etc/slurm``, and reach munged through ``AuthInfo=socket=...``, never
``/run/munge``: a SLURM or munge already set up on the machine is neither read
nor changed, and two test runs (on ports of their own) do not share a daemon.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PACKAGES = ("slurm-wlm", "munge")
# the daemons live in /usr/sbin, which a non-login PATH may lack
SEARCH_PATH = os.pathsep.join(["/usr/sbin", "/usr/bin", os.environ.get("PATH", "")])
APT_TIMEOUT = 600  # s, for each apt-get call
START_TIMEOUT = 30  # s, for each daemon to answer
JOB_TIMEOUT = 60  # s, for the trivial sbatch job
# sun_path of a unix socket holds 108 bytes with its terminating NUL
MAX_SOCKET_PATH = 107
SLURM_CONF = """\
ClusterName=ctapipe-sst1m-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={run}/spool
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={root}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# cores are consumed, memory is not: under CR_Core_Memory a job without --mem
# would take the whole node
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
# start a batch job at once instead of up to 3 s later
SchedulerParameters=batch_sched_delay=0
# sbatch --wait polls every 2 s only while MinJobAge < 6, else 2 s then 8 s
MinJobAge=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# the node offers the CPUs written here even where slurmd counts fewer
SlurmdParameters=config_overrides
# seconds between SIGTERM and SIGKILL of a cancelled job: a dask worker
# exits within a second of SIGTERM; the default 30 s for a stuck one is long
KillWait=5
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
PARTITION = "test"


def _skip(reason):
    """Skip the calling test with ``reason`` on one line."""
    pytest.skip(" ".join(str(reason).split()))


def _program(name):
    return shutil.which(name, path=SEARCH_PATH)


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _log_reason(path):
    """The line of a daemon's log that says why it stopped: its last fatal
    line, else its last error line, else its last line."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"{path}: no log written"
    for level in ("fatal", "error"):
        lines = [line for line in text.splitlines() if re.search(level, line, re.I)]
        if lines:
            return f"{path}: {lines[-1]}"
    return f"{path}: {_last_line(text)}"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_memory_mb():
    """The node's memory in MB, as slurmd -C would report it, less 5 % so that a
    slurmd measuring a little less does not drain the node."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(int(line.split()[1]) / 1024 * 0.95)
    return 1024


def install_slurm():
    """
    Install ``slurm-wlm`` and ``munge`` with apt-get where ``slurmctld`` is missing.

    Returns
    -------
    float or None
        Seconds spent installing, None when the programs were already there.

    Raises
    ------
    pytest.skip.Exception
        When not root, without apt-get, or when the install fails (no network,
        no package list): the reason is apt-get's last line.
    """
    if all(_program(name) for name in ("slurmctld", "slurmd", "munged", "sbatch")):
        return None
    if os.geteuid() != 0:
        _skip(f"SLURM is not installed and installing it needs root (uid {os.geteuid()})")
    apt = _program("apt-get")
    if apt is None:
        _skip("SLURM is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [
        apt,
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        # another apt-get of the test session (Chromium's) may hold the lock
        "-o",
        "DPkg::Lock::Timeout=300",
        # keep any configuration file already on the machine as it is
        "-o",
        "Dpkg::Options::=--force-confold",
        *PACKAGES,
    ]
    start = time.monotonic()
    result = None
    # a machine whose package lists are missing or stale needs an update first;
    # try without, since the update alone can take longer than the install
    for command in ([install], [[apt, "update", "-q"], install]):
        for argv in command:
            try:
                result = subprocess.run(
                    argv,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=APT_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                _skip(f"{' '.join(argv[:2])} did not end within {APT_TIMEOUT} s")
            if result.returncode != 0:
                break
        if result.returncode == 0:
            break
    if result.returncode != 0:
        _skip(
            f"apt-get could not install {' '.join(PACKAGES)}: "
            f"{_last_line(result.stderr or result.stdout)}"
        )
    if not _program("slurmctld"):
        _skip(f"apt-get installed {' '.join(PACKAGES)} but slurmctld is not on the PATH")
    return time.monotonic() - start


class SingleNodeSlurm:
    """
    A running single-node SLURM cluster (see :func:`single_node_slurm`).

    Attributes
    ----------
    root : Path
        Directory holding its configuration, state, spool and logs.
    env : dict
        The environment variables its clients need (``SLURM_CONF``); while the
        context is active they are also set in ``os.environ``.
    node, partition : str
        The node's and the default partition's names.
    cpus : int
        CPUs the node offers.
    timings : dict
        Seconds measured while starting: ``install`` (None when SLURM was
        installed already), ``daemons`` (until sinfo shows the node idle),
        ``sbatch`` (a trivial ``sbatch --wait`` job from submission to its end)
        and ``job_start`` (from submission until the job's script started).
    """

    def __init__(self, root, run, node, cpus):
        self.root = root
        self.run_dir = run
        self.node = node
        self.partition = PARTITION
        self.cpus = cpus
        self.conf = root / "slurm.conf"
        self.munge_socket = run / "munge.socket.2"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.logs = {
            "munged": root / "log" / "munged.log",
            "slurmctld": root / "log" / "slurmctld.log",
            "slurmd": root / "log" / "slurmd.log",
        }
        self.timings = {
            "install": None,
            "daemons": None,
            "sbatch": None,
            "job_start": None,
        }
        self._daemons = []  # (name, Popen), in the order they started

    def command(self, *argv, timeout=30, check=True):
        """
        Run a SLURM client (``sinfo``, ``squeue``, ...) against this cluster.

        Returns
        -------
        subprocess.CompletedProcess
            With its text output.

        Raises
        ------
        subprocess.CalledProcessError
            When ``check`` and the command fails.
        """
        program = _program(argv[0]) or argv[0]
        return subprocess.run(
            [program, *argv[1:]],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def node_state(self, fields="%t"):
        """The node's state as sinfo prints it (``idle``, ``mix``, ``alloc``...),
        or other sinfo ``fields`` of the node ("" while slurmctld does not answer)."""
        result = self.command("sinfo", "-h", "-N", "-o", fields, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def jobs(self):
        """Ids of the jobs squeue lists (pending, running or completing)."""
        result = self.command("squeue", "-h", "-o", "%i")
        return result.stdout.split()

    def cluster_options(self, python, workdir):
        """
        Keyword arguments of ``dask_jobqueue.SLURMCluster`` for this node.

        One single-threaded worker per 1-core job, so that a node of 2 CPUs runs
        two workers at once, each in its own SLURM job. The scheduler and the
        workers talk over the loopback interface: the node's name resolves to
        127.0.0.1, and traffic is to stay on this machine.

        Parameters
        ----------
        python : str or Path
            The Python of the workers (the venv's ``sys.executable``).
        workdir : Path
            Directory for the workers' job logs and local (spill) directories.

        Returns
        -------
        dict
        """
        workdir = Path(workdir)
        return {
            "cores": 1,
            "processes": 1,
            "memory": "2GiB",
            "python": str(python),
            "walltime": "01:00:00",
            "interface": "lo",
            "log_directory": str(workdir / "dask-logs"),
            "local_directory": str(workdir / "dask-local"),
            # a worker whose scheduler is gone (test killed) ends its job
            # instead of holding a CPU until the walltime
            "death_timeout": 30,
        }

    # -- start and stop ------------------------------------------------------

    def _write_config(self, ctld_port, slurmd_port, memory):
        for sub in ("state", "spool", "log", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # munged refuses a key readable by others
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(
            SLURM_CONF.format(
                host=self.node,
                ctld_port=ctld_port,
                slurmd_port=slurmd_port,
                munge_socket=self.munge_socket,
                root=self.root,
                run=self.run_dir,
                cpus=self.cpus,
                memory=memory,
                partition=self.partition,
            )
        )
        # no SPANK plugin: Debian's /etc/slurm/plugstack.conf stays out of it
        (self.root / "plugstack.conf").write_text("")

    def _start(self, name, argv):
        log = self.logs[name]
        with open(log.with_suffix(".out"), "w") as output:
            process = subprocess.Popen(
                argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # out of the test's process group: a Ctrl-C reaches the test,
                # which stops the daemons in order
                start_new_session=True,
            )
        self._daemons.append((name, process))
        return process

    def _wait_for(self, name, ready, what, why=None):
        """Poll ``ready()`` until true; skip with the daemon's log when it died,
        and with ``why()`` (default: the log) when it did not get there within
        START_TIMEOUT."""
        process = dict(self._daemons)[name]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready():
                return
            if process.poll() is not None:
                _skip(
                    f"{name} exited with {process.returncode}: "
                    f"{_log_reason(self._log_of(name))}"
                )
            time.sleep(0.1)
        reason = why() if why is not None else _log_reason(self._log_of(name))
        _skip(f"{what} within {START_TIMEOUT} s: {reason}")

    def _log_of(self, name):
        log = self.logs[name]
        # a daemon that fails before opening its log file says why on stderr
        if not log.exists() or not log.read_text(errors="replace").strip():
            return log.with_suffix(".out")
        return log

    def start(self):
        """Start munged, slurmctld and slurmd and wait until the node is idle."""
        start = time.monotonic()
        self._write_config(_free_port(), _free_port(), _node_memory_mb())
        munge = self.root / "munge"
        self._start(
            "munged",
            [
                _program("munged"),
                "--foreground",
                # munged refuses a key or socket under a directory others may
                # write to; a test's work directory is not a shared system path
                "--force",
                f"--key-file={munge / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.run_dir / 'munged.pid'}",
                f"--log-file={self.logs['munged']}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        self._wait_for(
            "munged",
            lambda: (
                subprocess.run(
                    [_program("munge"), "-n", f"--socket={self.munge_socket}"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ),
            "munged did not answer",
        )
        self._start("slurmctld", [_program("slurmctld"), "-D", "-i"])
        self._wait_for(
            "slurmctld",
            lambda: self.command("scontrol", "ping", check=False).returncode == 0,
            "slurmctld did not answer scontrol ping",
        )
        self._start("slurmd", [_program("slurmd"), "-D", "-N", self.node])
        self._wait_for(
            "slurmd",
            lambda: self.node_state() == "idle",
            "sinfo did not show the node idle",
            # slurmctld says why it refused the node (e.g. "inval Low RealMemory")
            why=lambda: "sinfo: " + self.node_state("%t %E"),
        )
        self.timings["daemons"] = time.monotonic() - start

    def check_sbatch(self):
        """
        Run a trivial job with ``sbatch --wait`` and check its output.

        Returns
        -------
        str
            The job's output.

        Raises
        ------
        pytest.skip.Exception
            When the job fails or does not end within JOB_TIMEOUT.
        """
        output = self.root / "sbatch-check.out"
        submitted = time.time()
        try:
            result = self.command(
                "sbatch",
                "--wait",
                "--parsable",
                "--job-name=check",
                f"--output={output}",
                "--wrap",
                'echo "started $(date +%s.%N) job $SLURM_JOB_ID on $(hostname)"',
                timeout=JOB_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _skip(
                f"sbatch --wait: the trivial job did not end within {JOB_TIMEOUT} s: "
                f"{_log_reason(self._log_of('slurmd'))}"
            )
        self.timings["sbatch"] = time.time() - submitted
        text = output.read_text() if output.exists() else ""
        if result.returncode != 0 or not text.startswith("started "):
            _skip(
                f"sbatch --wait: the trivial job failed ({result.returncode}): "
                f"{_last_line(result.stderr) if result.stderr.strip() else ''} "
                f"{_log_reason(self._log_of('slurmd'))}"
            )
        self.timings["job_start"] = float(text.split()[1]) - submitted
        return text

    def stop(self):
        """Cancel the jobs left, then stop the daemons this object started (and
        only those), last started first, and wait for them to exit."""
        if any(name == "slurmctld" for name, _ in self._daemons):
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                jobs = self.jobs()
                if jobs:
                    self.command("scancel", *jobs, check=False)
                    deadline = time.monotonic() + 15
                    while self.jobs() and time.monotonic() < deadline:
                        time.sleep(0.2)
        for _name, process in reversed(self._daemons):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        self._daemons.clear()


@contextlib.contextmanager
def single_node_slurm(workdir):
    """
    A single-node SLURM cluster on this host, for the duration of the context.

    Installs ``slurm-wlm`` and ``munge`` with apt-get when ``slurmctld`` is
    missing, writes a munge key, ``slurm.conf`` (proctrack/linuxproc, task/none,
    select/cons_tres, one node of at least 2 CPUs on 127.0.0.1, one default
    partition) under ``workdir/slurm``, starts munged, slurmctld and slurmd,
    waits until ``sinfo`` shows the node idle and checks that ``sbatch --wait``
    runs a job. ``SLURM_CONF`` is set in ``os.environ`` inside the context, so
    that libraries calling sbatch/squeue/scancel (dask-jobqueue) reach this
    cluster. On exit the jobs left are cancelled and the daemons started here
    are stopped and waited for.

    Parameters
    ----------
    workdir : Path
        Directory to hold the cluster's files (``workdir/slurm``).

    Yields
    ------
    SingleNodeSlurm

    Raises
    ------
    pytest.skip.Exception
        Where SLURM cannot run here: not root, no apt-get, the install fails,
        a daemon does not start or the trivial job fails; the one-line reason
        names the log line that says why.
    """
    if os.geteuid() != 0:
        _skip(f"a single-node SLURM needs root to run slurmd (uid {os.geteuid()})")
    install_seconds = install_slurm()
    root = Path(workdir) / "slurm"
    run = root / "run"
    # slurmd registers under the host's short name; NodeName must match it
    node = socket.gethostname().split(".")[0]
    # sockets (munged's, slurmd's and slurmstepd's <node>_<job id>.<step id> in
    # the spool) go to a short directory when the work directory is too long
    short_run = None
    if len(str(run / "spool" / f"{node}_{2**32}.{2**32}")) > MAX_SOCKET_PATH:
        short_run = Path(tempfile.mkdtemp(prefix="slurm-"))
        run = short_run
    cluster = SingleNodeSlurm(root, run, node, cpus=max(2, os.cpu_count() or 1))
    cluster.timings["install"] = install_seconds
    saved = {name: os.environ.get(name) for name in cluster.env}
    os.environ.update(cluster.env)
    try:
        cluster.start()
        cluster.check_sbatch()
        yield cluster
    finally:
        cluster.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if short_run is not None:
            shutil.rmtree(short_run, ignore_errors=True)
