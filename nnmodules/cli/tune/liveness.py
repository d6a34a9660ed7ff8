"""Whether a trial's process still runs: on this machine, its pid; on another, its heartbeat.

A database's storage has Optuna's heartbeat (`storage.open_storage`), which fails a trial whose process stopped
beating. A journal file has none in Optuna: a trial of such a study beats here instead (`beating`: the time, as
the user attribute `alive_at`, every `HEARTBEAT_S`), and a trial of another machine not heard of for `GRACE_S`
is dead (`alive`). Failing a dead trial succeeds in one process only (`claimed`), the one that continues it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from nnmodules.cli.tune.storage import GRACE_S, HEARTBEAT_S

ALIVE_AT = "alive_at"  # a beating trial's last sign of life: seconds since the epoch, by its machine's clock


def alive(user_attrs: dict[str, Any]) -> bool:
    """Whether the process that runs a trial (by the trial's user attributes) still runs, as far as one can tell.

    On this machine: whether its pid is there. On another: whether it beat in the last `GRACE_S`; one that does
    not beat (a database's study: Optuna watches those) is taken to run.
    """
    if user_attrs.get("host") == socket.gethostname() and "pid" in user_attrs:
        try:
            os.kill(user_attrs["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process of that number
            pass
        return True
    beaten = user_attrs.get(ALIVE_AT)
    return beaten is None or time.time() - beaten < GRACE_S


@contextlib.contextmanager
def beating(trial: optuna.Trial, every: float = HEARTBEAT_S) -> Iterator[None]:
    """Within it, the trial says it is alive every `every` seconds (from a thread of its own)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            trial.set_user_attr(ALIVE_AT, time.time())

    trial.set_user_attr(ALIVE_AT, time.time())
    thread = threading.Thread(target=beat, name="trial heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def claimed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Whether this process ended a running trial (as failed), rather than its own process or another's."""
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (ValueError, UpdateFinishedTrialError):  # ended meanwhile, by its process or another
        return False
    return True
