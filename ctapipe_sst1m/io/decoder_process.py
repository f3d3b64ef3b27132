"""
DigiCam decoding in a child process, events handed over in shared memory.

protozfits crashes the interpreter (segmentation fault, abort) or allocates
without bound on some damaged files that no check of the file can catch (the
data may be damaged under a recomputed checksum, or a header card tell a wrong
size). The decoder therefore runs in a child process with limited memory; when
it dies, runs out of memory or stops answering, the parent raises one
`DigiCamFileError` naming the file and the event, and goes on living to say so.

The child decodes the run's files in order, ahead of the parent, and writes each
event's arrays in place into one of ``n_slots`` slots of a shared memory
region (a Linux memfd shared with the child); the event's small fields and
where its arrays lie go through a pipe. The parent copies the arrays out and
hands the slots back at once, so the child decodes while the parent processes.
Pickling the 130 kB of an event through the pipe instead costs as much as the
decode itself.

The child is this file run as a script (``python -P decoder_process.py``),
which imports numpy, protozfits and ``decoding.py`` by path, not the package
and its ctapipe imports: it starts in about 0.15 s. It is killed when the
parent (the thread that started it) dies (``PR_SET_PDEATHSIG``), ignores the
SIGINT of a terminal's Ctrl-C (the parent stops it), and is killed by
`DecoderProcess.close`.
"""

import contextlib
import mmap
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

__all__ = ["DecoderError", "DecoderProcess"]

#: the fields of `DecodedEvent` before its arrays
N_SCALARS = 6
#: bytes of a slot; an event that does not fit (never seen: DigiCam events are
#: 135 kB, 320 kB with trigger traces) goes through the pipe instead
SLOT_BYTES = 512 * 1024
#: bytes at the start of the shared region: the file and event the child is
#: decoding, so that a crash can be located
CONTROL_BYTES = 64
ALIGN = 64


class DecoderError(Exception):
    """The decoder process failed; the message names the file and the event."""


# --------------------------------------------------------------------- parent


class DecoderProcess:
    """
    A child process decoding the DigiCam events of ``paths``, in order.

    Parameters
    ----------
    paths : list[pathlib.Path]
        The run's files, already checked (headers, sizes, checksums).
    with_trigger : bool
        Also decode the trigger traces.
    memory_gib : float
        Address-space limit of the child (``RLIMIT_AS``), GiB.
    timeout : float
        Seconds the child may take to send the next event before it is
        declared stuck.
    config_fields : list[str] or None
        Fields of the first file's DigicamConfig row to send first (see
        `digicam_config`); None: the file has no DigicamConfig table.
    n_slots : int
        Slots of the shared memory ring: how far the child may run ahead.

    Raises
    ------
    DecoderError
        If the child cannot be started.
    """

    def __init__(
        self,
        paths,
        with_trigger=False,
        memory_gib=2.0,
        timeout=60.0,
        config_fields=None,
        n_slots=96,
    ):
        self.paths = [Path(p) for p in paths]
        self.memory_gib = memory_gib
        self.timeout = timeout
        self.n_slots = n_slots
        self._closed = False
        self._process = None
        size = CONTROL_BYTES + n_slots * SLOT_BYTES
        try:
            self._fd = os.memfd_create("sst1m-decoder", os.MFD_CLOEXEC)
        except (AttributeError, OSError) as err:
            # not Linux: no memfd
            self._closed = True
            raise DecoderError(f"no shared memory for a decoder process: {err}") from None
        os.ftruncate(self._fd, size)
        self._memory = mmap.mmap(self._fd, size)
        self._control = np.ndarray(2, dtype=np.int64, buffer=self._memory)
        self._control[:] = (0, -1)
        # the child's stderr, read back when it dies: protozfits and the C++
        # runtime say there why they abort
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        arguments = {
            "memory_fd": self._fd,
            "size": size,
            "command_fd": to_child_r,
            "event_fd": from_child_w,
            "parent_pid": os.getpid(),
            "memory_bytes": int(memory_gib * 2**30),
            "with_trigger": with_trigger,
            "n_slots": n_slots,
            "config_fields": config_fields,
            "paths": [str(p) for p in self.paths],
        }
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", __file__, repr(arguments)],
                pass_fds=(self._fd, to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
            )
        except OSError as err:
            self.close()
            raise DecoderError(f"cannot start the decoder process: {err}") from err
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._commands = Connection(to_child_w, readable=False)
        self._events = Connection(from_child_r, writable=False)
        self._started = False
        self._config_fields = config_fields
        self._config = None
        self._freed = []

    # the child waits for this before it opens any file, so that it can
    # import while the parent checks the files
    def start(self):
        """Let the child decode (call once the files passed their checks)."""
        if self._started:
            return
        self._started = True
        try:
            self._commands.send(("go",))
        except OSError:
            raise DecoderError(self._located(self._death())) from None
        if self._config_fields is not None:
            self._config = self._receive()[1]

    def digicam_config(self):
        """
        The first file's DigicamConfig row as a dict (None without one).

        Raises
        ------
        DecoderError
            If the child dies or stops answering.
        """
        self.start()
        return self._config

    def events(self):
        """
        Yield the decoded events of all files, in order.

        Yields
        ------
        tuple[int, DecodedEvent]
            Index of the event's file in ``paths``, and the event.

        Raises
        ------
        DecoderError
            If the child dies, fails to decode an event, exceeds its memory or
            stops answering; the message names the file and the event.
        """
        from .decoding import DecodedEvent

        self.start()
        try:
            while True:
                message = self._receive()
                kind = message[0]
                if kind == "done":
                    return
                _, file_index, slot, scalars, layout = message
                if slot is None:
                    arrays = layout
                else:
                    arrays = self._copy_out(slot, layout)
                    self._release(slot)
                yield file_index, DecodedEvent(*scalars, *arrays)
        finally:
            # a consumer that stops early (max_events, an error) stops the child
            self.close()

    def ready(self):
        """True if the child's next message is waiting: taking it will not block."""
        return not self._closed and self._started and self._events.poll(0)

    def _copy_out(self, slot, layout):
        base = CONTROL_BYTES + slot * SLOT_BYTES
        arrays = []
        for entry in layout:
            if entry is None:
                arrays.append(None)
                continue
            offset, dtype, shape = entry
            view = np.ndarray(
                shape, dtype=dtype, buffer=self._memory, offset=base + offset
            )
            arrays.append(view.copy())
        return arrays

    def _release(self, slot):
        # handed back in batches: one pipe write per few events
        self._freed.append(slot)
        if len(self._freed) >= 8:
            self._send_freed()

    def _send_freed(self):
        # a child that has sent everything has exited: its death, if it
        # matters, is seen when its next message is awaited
        with contextlib.suppress(OSError):
            self._commands.send(("free", self._freed))
        self._freed = []

    def _receive(self):
        """The child's next message; a failure of the child as DecoderError."""
        if self._freed and not self._events.poll(0):
            # the child may be waiting for slots
            self._send_freed()
        if not self._events.poll(self.timeout):
            self._kill()
            raise DecoderError(self._located(f"sent nothing for {self.timeout:.0f} s"))
        try:
            message = pickle.loads(self._events.recv_bytes())
        except (EOFError, OSError):
            raise DecoderError(self._located(self._death())) from None
        if message[0] == "error":
            self._kill()
            raise DecoderError(self._located(message[1]))
        return message

    def _death(self):
        """Why the child ended, from its exit status and the end of its stderr."""
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self._process.returncode
        last = self._last_stderr_line()
        if "bad_alloc" in last or "MemoryError" in last:
            return f"ran out of its {self.memory_gib:g} GiB of memory ({last})"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if name == "SIGKILL":
                return (
                    "was killed (SIGKILL: out of memory, or by someone); "
                    f"its memory limit is {self.memory_gib:g} GiB"
                )
            return f"died ({name}{': ' + last if last else ''})"
        return f"exited with code {code}{': ' + last if last else ''}"

    def _last_stderr_line(self):
        try:
            self._stderr.seek(0)
            lines = self._stderr.read()[-4000:].decode(errors="replace").splitlines()
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in lines if line.strip()]
        return lines[-1] if lines else ""

    def _located(self, what):
        """``path: the decoder ... at event N of this file``."""
        file_index, event = (0, -1) if self._control is None else map(int, self._control)
        path = self.paths[min(file_index, len(self.paths) - 1)]
        where = "opening it" if event < 0 else f"at event {event} of this file"
        return (
            f"{path}: the raw-data decoder (protozfits, in a child process) {what} "
            f"{where}; the file is damaged"
        )

    def _kill(self):
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def close(self):
        """Stop the child and free the shared memory; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._kill()
        for connection in ("_commands", "_events"):
            if hasattr(self, connection):
                getattr(self, connection).close()
        self._control = None
        # BufferError: a view is still alive; the mapping goes with it
        with contextlib.suppress(BufferError):
            self._memory.close()
        os.close(self._fd)
        self._stderr.close()

    def __del__(self):
        self.close()

    @property
    def pid(self):
        """Process id of the child."""
        return self._process.pid


# ---------------------------------------------------------------------- child


def _die_with_parent(parent_pid):
    """Have the kernel kill this process when the parent dies (Linux)."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    # the parent may have died before prctl
    if os.getppid() != parent_pid:
        os._exit(1)


def _load_decoding():
    """decoding.py by path: importing the package would import ctapipe (3 s)."""
    import importlib.util

    path = Path(__file__).with_name("decoding.py")
    spec = importlib.util.spec_from_file_location("sst1m_decoding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_event(memory, slot, arrays):
    """Arrays into ``slot``; their layout, or None if they do not fit."""
    base = CONTROL_BYTES + slot * SLOT_BYTES
    layout = []
    offset = 0
    for array in arrays:
        if array is None:
            layout.append(None)
            continue
        array = np.ascontiguousarray(array)
        if offset + array.nbytes > SLOT_BYTES:
            return None
        target = np.ndarray(
            array.shape, dtype=array.dtype, buffer=memory, offset=base + offset
        )
        target[...] = array
        layout.append((offset, array.dtype.str, array.shape))
        offset += -(-array.nbytes // ALIGN) * ALIGN
    return layout


def _child(arguments, commands, send):
    import resource
    from collections import deque

    import protozfits

    decoding = _load_decoding()
    memory = mmap.mmap(arguments["memory_fd"], arguments["size"])
    control = np.ndarray(2, dtype=np.int64, buffer=memory)
    free = deque(range(arguments["n_slots"]))
    if commands.recv()[0] != "go":
        return
    # limited only now: the imports above map more address space than they use
    limit = arguments["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    fields = arguments["config_fields"]
    paths = arguments["paths"]
    if fields is not None:
        control[:] = (0, -1)
        with protozfits.File(paths[0]) as zfile:
            row = next(iter(zfile.DigicamConfig))
            config = {k: getattr(row, k) for k in fields if hasattr(row, k)}
        send(("config", config))

    with_trigger = arguments["with_trigger"]
    for file_index, path in enumerate(paths):
        control[:] = (file_index, -1)
        with protozfits.File(path) as zfile:
            iterator = iter(zfile.Events)
            index = 0
            while True:
                control[1] = index
                try:
                    zevent = next(iterator)
                except StopIteration:
                    break
                decoded = decoding.decode(zevent, with_trigger)
                while not free:
                    command = commands.recv()
                    if command[0] != "free":
                        return
                    free.extend(command[1])
                slot = free.popleft()
                arrays = decoded[N_SCALARS:]
                scalars = tuple(int(v) for v in decoded[:N_SCALARS])
                layout = _write_event(memory, slot, arrays)
                if layout is None:
                    free.appendleft(slot)
                    send(("event", file_index, None, scalars, list(arrays)))
                else:
                    send(("event", file_index, slot, scalars, layout))
                index += 1
    send(("done",))


def _main():
    import ast

    arguments = ast.literal_eval(sys.argv[1])
    _die_with_parent(arguments["parent_pid"])
    # the terminal's Ctrl-C goes to the whole process group: the parent
    # decides what happens, and kills this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    commands = Connection(arguments["command_fd"], writable=False)
    events = Connection(arguments["event_fd"], readable=False)

    def send(message):
        events.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    gib = arguments["memory_bytes"] / 2**30
    try:
        _child(arguments, commands, send)
    except MemoryError:
        # RLIMIT_AS reached inside Python (numpy, protobuf's Python side)
        _try_send(send, ("error", f"ran out of its {gib:g} GiB of memory (MemoryError)"))
    except Exception as err:  # any failure is the file's, said in one line
        # one line: protozfits' messages span several
        text = " ".join(str(err).split())
        _try_send(send, ("error", f"failed ({type(err).__name__}: {text})"))
    except BaseException:
        os._exit(1)


def _try_send(send, message):
    with contextlib.suppress(OSError):
        send(message)
    os._exit(1)


if __name__ == "__main__":
    _main()
