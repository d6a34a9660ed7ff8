"""`litmodules tune --workers N`: N processes on this machine drawing trials from one study, each bound to one device.

On a machine with GPUs each worker sees one of them (`CUDA_VISIBLE_DEVICES`); without, each gets an equal share of
the CPU cores as its threads. Every worker is an ordinary `litmodules tune` of the same options (`--worker K`), so
the same command on another machine, with the same `--storage`, adds its workers to the study. The storage reaches
the workers through the environment (`LITMODULES_STORAGE`), not their command lines, which other users may read.
Their lines come through this process, each after `[worker K]`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

from datamodules.errors import UserError
from nnmodules.cli.tune.storage import STORAGE_VARIABLE

QUIET = ["--trainer.enable_progress_bar=false"]  # several bars on one terminal would be unreadable
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what stops a worker's trial to be continued, as it stops a fit
REAP_S = 0.5  # how often this process looks for workers that ended
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # a CPU worker's share of the cores, as torch reads it


def devices_for(count: int) -> list[dict[str, str]]:
    """Each worker's environment: its GPU and its share of the cores; more workers than devices are refused."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = _visible_gpus()
    if gpus and count > len(gpus):
        raise UserError(f"--workers {count}: this machine shows {len(gpus)} GPUs, and a worker takes one")
    if not gpus and count > cores:
        raise UserError(f"--workers {count}: this machine has {cores} CPU cores and no GPU: at most {cores} workers")
    share = str(max(1, cores // count))
    threads = {name: share for name in THREADS}
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": gpu, **threads} for gpu in gpus[:count]]
    return [dict(threads) for _ in range(count)]


def _visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given:  # a worker sees one of the GPUs this process was given, by the name it was given
        return [gpu.strip() for gpu in given.split(",") if gpu.strip()][: torch.cuda.device_count()]
    return [str(index) for index in range(torch.cuda.device_count())]


def run_workers(count: int, argv: list[str], storage: str | None) -> list[int]:
    """Runs `litmodules tune ARGV` in `count` worker processes until all end; returns their exit statuses.

    Ctrl-C (or SIGTERM) goes on to the workers: they stop their trials, as `tune` does, to be continued; a worker
    killed on the way is said, and its trial is continued by the others.
    """
    environments = devices_for(count)
    processes, relays = [], []
    for index, devices in enumerate(environments):
        env = {**os.environ, **devices, "PYTHONUNBUFFERED": "1"}
        if storage is not None:
            env[STORAGE_VARIABLE] = storage
        command = [sys.executable, "-m", "nnmodules", "tune", *argv, *QUIET, "--worker", str(index)]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        # a session of its own: a Ctrl-C reaches it once, from here, as the one Ctrl-C a single tune gets
        process = subprocess.Popen(command, env=env, start_new_session=True, **pipes)
        processes.append(process)
        shown = devices.get("CUDA_VISIBLE_DEVICES", f"{devices[THREADS[0]]} CPU threads")
        print(f"[worker {index}] pid {process.pid}, {'GPU ' if 'CUDA_VISIBLE_DEVICES' in devices else ''}{shown}")
        for source, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
            relay = threading.Thread(target=_relay, args=(source, target, f"[worker {index}] "), daemon=True)
            relay.start()
            relays.append(relay)
    with _forwarded(STOP_SIGNALS, processes):
        # each reaped as it ends (polled, every one): a dead worker's pid must be gone for the others to see it
        while [process.poll() for process in processes].count(None):
            time.sleep(REAP_S)
        codes = [process.returncode for process in processes]
    for relay in relays:
        relay.join()
    for index, code in enumerate(codes):
        if code < 0 and code != -signal.SIGINT:
            print(f"[worker {index}] ended by signal {-code}: its trial goes to a worker that runs on", file=sys.stderr)
    return [128 - code if code < 0 else code for code in codes]


@contextlib.contextmanager
def _forwarded(signals: tuple[int, ...], processes: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Within it, these signals go on to the running processes (the main thread's handlers; elsewhere as they are)."""

    def forward(signum: int, frame: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, forward) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _relay(source: IO[str], target: IO[str], prefix: str) -> None:
    """Each line a worker writes, after its prefix (whole lines: workers' lines never mix)."""
    for line in source:
        target.write(f"{prefix}{line}")
        target.flush()
