"""`litmodules tune --workers N`: N processes on this machine drawing trials from one study, each bound to one device.

This process is worker 0 and starts the others; each gets one GPU (`CUDA_VISIBLE_DEVICES`; this process takes the
first it sees) or, on a machine without, an equal share of the CPU cores as its threads. Every other worker is an
ordinary `litmodules tune` of the same options (`--worker K`), so the same command on another machine, with the same
`--storage`, adds its workers to the study. The storage reaches the workers through the environment
(`LITMODULES_STORAGE`), not their command lines, which other users may read. Their lines come through this process,
each after `[worker K]`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import IO

import torch

from datamodules.errors import UserError
from nnmodules.cli.tune.storage import STORAGE_VARIABLE

QUIET = ["--trainer.enable_progress_bar=false"]  # every worker's: several bars on one terminal would be unreadable
WAIT, GO = "LITMODULES_WAIT_FOR_WORD", "go"  # a worker waits for this line on its stdin before it opens the study
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # a CPU worker's share of the cores, as torch reads it


def devices_for(count: int, per_worker: int = 1) -> list[dict[str, str]]:
    """Each worker's environment: its GPUs (`per_worker`: a trial's devices) and its share of the cores.

    More workers than the devices allow are refused.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = _visible_gpus()
    each = "" if per_worker == 1 else f" ({per_worker} a trial)"
    if gpus and count * per_worker > len(gpus):
        raise UserError(
            f"--workers {count}: this machine shows {len(gpus)} GPUs, and a worker takes {per_worker}{each}"
        )
    if not gpus and count * per_worker > cores:
        most = cores // per_worker
        raise UserError(
            f"--workers {count}: this machine has {cores} CPU cores and no GPU: at most {most} workers{each}"
        )
    share = str(max(1, cores // (count * per_worker)))
    threads = {name: share for name in THREADS}
    if gpus:
        groups = [gpus[k * per_worker : (k + 1) * per_worker] for k in range(count)]
        return [{"CUDA_VISIBLE_DEVICES": ",".join(group), **threads} for group in groups]
    return [dict(threads) for _ in range(count)]


def _visible_gpus() -> list[str]:
    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given:  # a worker sees one of the GPUs this process was given, by the name it was given
        return [gpu.strip() for gpu in given.split(",") if gpu.strip()][: torch.cuda.device_count()]
    return [str(index) for index in range(torch.cuda.device_count())]


def wait_for_word() -> None:
    """In a worker that `Workers` started: waits until the process that started it has checked the search."""
    if os.environ.get(WAIT) and sys.stdin.readline().strip() != GO:
        raise SystemExit(0)  # its checks failed (it said so), or it is gone


class Workers:
    """Workers 1 to N-1 of a search, started; this process, worker 0, runs trials beside them.

    They start at once and wait for `go` (this process's checks passed) before they open the study; their lines are
    held until then, and dropped if `discard` stops them instead. Each is reaped as it ends (a dead worker's pid
    must be gone for the others to see it, `liveness.alive`), and one killed on the way is said: its trial goes to
    a worker that runs on.
    """

    def __init__(self, count: int, argv: list[str], storage: str | None, per_worker: int = 1) -> None:
        environments = devices_for(count, per_worker)
        self.per_worker = per_worker
        self.said = threading.Event()  # their lines may be said (set by go), or dropped (set by discard)
        self.dropped = False
        self.started: list[str] = []  # a line for each, said when they go
        self.threads = torch.get_num_threads()  # this process's own, given back when the workers end
        if "CUDA_VISIBLE_DEVICES" not in environments[0]:  # worker 0's share of the cores; its GPU: the first
            torch.set_num_threads(int(environments[0][THREADS[0]]))
        self.processes: list[subprocess.Popen[str]] = []
        self.relays: list[threading.Thread] = []
        for index, devices in enumerate(environments[1:], start=1):
            env = {**os.environ, **devices, "PYTHONUNBUFFERED": "1", WAIT: "1"}
            if storage is not None:
                env[STORAGE_VARIABLE] = storage
            command = [sys.executable, "-m", "nnmodules", "tune", *argv, *QUIET, "--worker", str(index)]
            pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
            # a session of its own: a Ctrl-C reaches it once, from this process, as the one Ctrl-C a tune gets
            process = subprocess.Popen(command, env=env, start_new_session=True, **pipes)
            self.processes.append(process)
            device = f"GPU {devices['CUDA_VISIBLE_DEVICES']}" if "CUDA_VISIBLE_DEVICES" in devices else "CPU"
            self.started.append(f"[worker {index}] started: pid {process.pid}, {device}, {devices[THREADS[0]]} threads")
            for source, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
                relay = threading.Thread(target=self._relay, args=(process, source, target, index), daemon=True)
                relay.start()
                self.relays.append(relay)

    def go(self) -> None:
        """The search is checked: the workers open the study, and their lines are said."""
        for line in self.started:
            print(line)
        for process in self.processes:
            with contextlib.suppress(BrokenPipeError):  # one that died already: reaped, and said, as any
                assert process.stdin is not None
                process.stdin.write(f"{GO}\n")
                process.stdin.close()
        self.said.set()

    def discard(self) -> None:
        """The search is refused (this process says why): the workers stop, their lines unsaid."""
        self.dropped = True
        for process in self.processes:
            process.kill()
        self.said.set()
        self.wait()

    def stop(self) -> None:
        """Ctrl-C to each worker still running: it stops its trial, to be continued, as a tune does."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    def wait(self) -> list[int]:
        """Waits for every worker to end; their exit statuses (a signal's as the shell gives it: 128 + number)."""
        codes = [process.wait() for process in self.processes]
        for relay in self.relays:
            relay.join()
        torch.set_num_threads(self.threads)
        return [128 - code if code < 0 else code for code in codes]

    def _relay(self, process: subprocess.Popen[str], source: IO[str], target: IO[str], index: int) -> None:
        """Each line a worker writes, after its prefix (whole lines: workers' lines never mix); then its end."""
        for line in source:
            self.said.wait()
            if not self.dropped:
                target.write(f"[worker {index}] {line}")
                target.flush()
        code = process.wait()  # reaped as it ends
        if target is sys.stderr and code < 0 and code != -signal.SIGINT and not self.dropped:
            print(f"[worker {index}] ended by signal {-code}: its trial goes to a worker that runs on", file=target)
