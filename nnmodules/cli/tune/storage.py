"""Where a study lives: the SQLite file beside its trials, or any storage Optuna takes, named by `--storage`.

    --storage postgresql://user@host/db     a database server (any SQLAlchemy URL: mysql://..., sqlite:///...)
    --storage /shared/search.journal        Optuna's journal file (no `://`), for a file system many machines share
    LITMODULES_STORAGE=postgresql://...     the same, from the environment, where `--storage` is not given

A password in the URL is never shown: every line that names the storage names it masked (`shown_storage`), and workers
started by `--workers` receive it through the environment, not their command line. A database's storage has
Optuna's heartbeat: a trial whose process stopped beating (a machine that died) is failed by the next worker that
starts a trial or waits for one, and its `heartbeat_stale_trial_callback` queues it to be continued.
"""

from __future__ import annotations

import os
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from datamodules.errors import UserError

STORAGE_VARIABLE = "LITMODULES_STORAGE"  # the storage, where --storage is not given
STUDY_FILE = "study.db"  # the default storage: SQLite, beside the study's trials
HEARTBEAT_S = 20  # a running trial's process says it is alive this often (database storages)
GRACE_S = 120  # ... and a trial not heard of for this long is taken for dead, and continued by another worker
SECRET = "***"  # a password, as shown
SECRET_KEYS = ("password", "passwd", "secret", "token")  # query parameters shown masked too
DRIVERS = {  # a database's driver that SQLAlchemy looks for, and what installs it
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient (or PyMySQL, as mysql+pymysql://...)",
    "pymysql": "PyMySQL",
}


def storage_of(given: str | None) -> str | None:
    """The storage named by `--storage` or, without it, by LITMODULES_STORAGE; None: the default file."""
    return given or os.environ.get(STORAGE_VARIABLE) or None


def has_heartbeat(storage: str | None) -> bool:
    """Whether the storage has Optuna's heartbeat: a database's (the default file's too), not a journal file's."""
    return storage is None or "://" in storage


def study_shown(storage: str | None, folder: Path, name: str) -> str:
    """A study as lines name it: the default file's path, or its name in its storage (`shown_storage`)."""
    return str(folder / STUDY_FILE) if storage is None else f"{name} in {shown_storage(storage, folder)}"


def shown_storage(storage: str | None, folder: Path) -> str:
    """The storage as lines name it: the default file's path, a URL with its password masked, a journal's path."""
    if storage is None:
        return str(folder / STUDY_FILE)
    if "://" not in storage:
        return storage
    parts = urllib.parse.urlsplit(storage)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:{SECRET}@{host}"
    query = urllib.parse.urlencode(
        [
            (key, SECRET if key.lower() in SECRET_KEYS else value)
            for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def secrets_of(storage: str | None) -> list[str]:
    """The passwords a storage's URL holds, to be masked wherever they might be said."""
    if storage is None or "://" not in storage:
        return []
    parts = urllib.parse.urlsplit(storage)
    found = [parts.password] if parts.password else []
    found += [value for key, value in urllib.parse.parse_qsl(parts.query) if key.lower() in SECRET_KEYS and value]
    plain = [urllib.parse.unquote(secret) for secret in found]  # as a URL writes it, and as it is
    return sorted({*found, *plain}, key=len, reverse=True)


def masked(text: str, storage: str | None) -> str:
    """`text` with the storage's URL and passwords masked."""
    if storage is not None:
        text = text.replace(storage, shown_storage(storage, Path()))
    for secret in secrets_of(storage):
        text = text.replace(secret, SECRET)
    return text


def open_storage(
    storage: str | None, folder: Path, on_dead_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
) -> optuna.storages.BaseStorage:
    """The study's storage; a URL that does not open is one line naming it (masked) and why.

    `on_dead_trial`: Optuna's failed-trial callback of a database storage, called by the worker that failed a trial
    whose heartbeat stopped.
    """
    if storage is not None and "://" not in storage:  # a path: Optuna's journal file
        path = Path(storage).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{folder / STUDY_FILE}"
    heartbeat = {
        "heartbeat_interval": HEARTBEAT_S,
        "grace_period": GRACE_S,
        "heartbeat_stale_trial_callback": on_dead_trial,
    }
    connect = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # others may be writing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # the heartbeat, experimental since Optuna 2.9
            return RDBStorage(url, engine_kwargs=connect, **heartbeat)
    except ImportError as error:  # the database's driver (Optuna says which in the error's cause)
        missing = getattr(error.__cause__, "name", None) or error.name
        needed = DRIVERS.get(str(missing), missing)
        raise UserError(f"--storage {shown_storage(url, folder)}: needs {missing}: pip install {needed}") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as error:
        why = masked(" ".join(str(error).split("(Background on this error")[0].split()), url)
        raise UserError(f"--storage {shown_storage(url, folder)} does not open: {why}") from None
