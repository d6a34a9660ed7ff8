"""`litmodules tune --workers` and `--storage`: workers on one study through a real PostgreSQL server or a journal
file, one killed in the middle of a trial; passwords never written; each worker bound to its device."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from conftest import VAL_SIZE, in_another_process, python_path
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from datamodules.errors import UserError
from nnmodules.cli import stages
from nnmodules.cli.tune import storage as storages
from nnmodules.cli.tune import workers
from nnmodules.cli.tune.liveness import ALIVE_AT, alive, beating, claimed
from nnmodules.cli.tune.search import read_search
from nnmodules.cli.tune.study import tune

TESTS = Path(__file__).parent
PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))  # Debian's layout, where PATH does not have them
USER = "litmodules"
EPOCHS = 3


def pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    candidates = [folder / name for folder in reversed(PG_BINS) if (folder / name).is_file()]
    return found or (str(candidates[0]) if candidates else None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server in a temporary folder, for this module's tests: its URL, with a password."""
    initdb, pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (no initdb and pg_ctl): these tests need a real server")
    pytest.importorskip("psycopg", reason="PostgreSQL's driver (psycopg, in the checks extra)")
    folder = Path(tempfile.mkdtemp(prefix="litmodules-postgres-"))
    as_postgres = []
    password = f"pw-{secrets.token_hex(8)}"
    (folder / "password").write_text(password)
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own user runs it
        for path in (folder, folder / "password"):
            shutil.chown(path, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    settings = ["--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8"]  # a password over TCP
    run = [*as_postgres, initdb, "-D", str(data), "-U", USER, f"--pwfile={folder / 'password'}", *settings]
    subprocess.run(run, check=True, capture_output=True)
    listen = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = [*as_postgres, pg_ctl, "-D", str(data), "-o", listen, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres"
    finally:
        stop = [*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["postgresql", "journal"])
def storage(request, tmp_path) -> str:
    """The study's storage, as --storage names it: the server's URL, or a journal file in a shared folder."""
    if request.param == "journal":
        return str(tmp_path / "shared" / "search.journal")
    return request.getfixturevalue("postgres")


def opened(storage: str) -> optuna.storages.BaseStorage | str:
    return storage if "://" in storage else JournalStorage(JournalFileBackend(storage))


def worker_args(mnist_dir: Path, folder: Path, *more: str) -> list[str]:
    search = folder / "search.yaml"
    space = {"model.init_args.lr": {"low": 1e-3, "high": 3e-2, "log": True}}
    search.write_text(yaml.safe_dump({"space": space, "pruner": "NopPruner"}))  # every trial runs whole
    data = [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    model = ["--model=MLPClassifier", "--model.hidden_dims=[32]", "--data=MNISTDataModule", *data]
    run = [f"--trainer.max_epochs={EPOCHS}", "--trainer.log_every_n_steps=4", "--trainer.enable_model_summary=false"]
    return ["tune", "--search", str(search), "--study", folder.name, *model, *run, *more]


def start(args: list[str], folder: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": python_path(TESTS)}  # the workers import tune_callbacks
    command = [sys.executable, "-m", "nnmodules", *args]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def held_pid(marker: Path, process: subprocess.Popen[str], seconds: float = 240) -> int:
    """The pid that `tune_callbacks.HoldOnce` wrote, once a worker holds in its trial."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends and process.poll() is None:
        if marker.is_file() and marker.read_text():
            return int(marker.read_text())
        time.sleep(0.2)
    raise AssertionError(f"no worker held (the command: {process.poll()}): {process.communicate()[0]}")


def hold(marker: Path, epoch: int, seconds: float = 600) -> str:
    settings = {"marker": str(marker), "epoch": epoch, "seconds": seconds}
    spec = {"class_path": "tune_callbacks.HoldOnce", "init_args": settings}
    return f"--trainer.callbacks+={json.dumps(spec)}"


def test_a_storage_is_shown_with_its_passwords_masked():
    url = "postgresql://bob:p%40ss@db.example:5432/studies?sslmode=require&password=other"
    shown = storages.shown_storage(url, Path("runs"))
    assert shown == "postgresql://bob:***@db.example:5432/studies?sslmode=require&password=***"
    assert storages.masked(f"tune --storage {url} --trials 3", url) == f"tune --storage {shown} --trials 3"
    assert storages.masked("connecting as bob with p@ss failed", url) == "connecting as bob with *** failed"
    assert storages.shown_storage(None, Path("runs") / "s") == str(Path("runs") / "s" / "study.db")
    assert storages.shown_storage("/shared/s.journal", Path()) == "/shared/s.journal"


def test_the_storage_comes_from_the_environment_where_the_command_names_none(monkeypatch):
    monkeypatch.setenv("LITMODULES_STORAGE", "postgresql://bob@db/studies")
    assert storages.storage_of(None) == "postgresql://bob@db/studies"
    assert storages.storage_of("x.journal") == "x.journal"
    monkeypatch.delenv("LITMODULES_STORAGE")
    assert storages.storage_of(None) is None


def test_a_database_without_its_driver_or_unknown_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"^--storage mysql://bob:\*\*\*@db/studies: needs MySQLdb: pip install mysql"):
        storages.open_storage("mysql://bob:pw@db/studies", tmp_path, on_dead_trial=print)
    with pytest.raises(UserError, match=r"^--storage nodb://x does not open: .*nodb"):
        storages.open_storage("nodb://x", tmp_path, on_dead_trial=print)


def test_a_wrong_password_is_one_line_that_shows_none(postgres, tmp_path):
    wrong = postgres.replace(urllib.parse.urlsplit(postgres).password, "not-the-password")
    with pytest.raises(UserError) as refused:
        storages.open_storage(wrong, tmp_path, on_dead_trial=print)
    message = str(refused.value)
    assert message.startswith(f"--storage {storages.shown_storage(wrong, tmp_path)} does not open: ")
    assert "password authentication failed" in message and "not-the-password" not in message
    assert "\n" not in message


def test_two_processes_sharing_a_study_never_draw_the_same_values(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"space": {"x": {"low": 0.0, "high": 1.0}}}))
    search, url = read_search(path), f"sqlite:///{tmp_path / 'study.db'}"
    first, second = (optuna.create_study(storage=url, study_name="s", load_if_exists=True) for _ in range(2))
    for study in (first, second):
        study.sampler = search.per_trial_sampler()  # each process's own, seeded alike
    asked = [first.ask(), second.ask(), first.ask()]  # as two workers that started together ask
    values = [trial.suggest_float("x", 0.0, 1.0) for trial in asked]
    assert len(set(values)) == 3
    alone = optuna.create_study(sampler=search.make_sampler(1))  # trial 1, as one process alone draws it
    assert alone.ask().suggest_float("x", 0.0, 1.0) == values[1]


def test_a_dead_trial_is_claimed_by_one_process_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    study.ask()
    (running,) = study.get_trials()  # as each of two processes read it, before either failed it
    assert claimed(study, running) is True
    assert claimed(optuna.load_study(study_name="s", storage=url), running) is False  # failed already
    assert study.get_trials()[0].state == TrialState.FAIL


def test_a_trial_of_another_machine_is_dead_when_it_stops_beating(monkeypatch):
    now = time.time()
    elsewhere = {"host": "another-machine", "pid": os.getpid()}  # its pid means nothing here
    assert alive(elsewhere)  # no heartbeat of ours (a database's study): taken to run, Optuna watches it
    assert alive({**elsewhere, ALIVE_AT: now - storages.GRACE_S + 5})
    assert not alive({**elsewhere, ALIVE_AT: now - storages.GRACE_S - 5})
    here = {"host": socket.gethostname(), "pid": 2**22 + 1, ALIVE_AT: now}  # above pid_max: gone
    assert not alive(here)  # its process is gone, whatever it last said


def test_a_running_trial_of_a_journal_beats(tmp_path):
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(tmp_path / "s.journal"))))
    trial = study.ask()
    with beating(trial, every=0.05):
        first = study.trials[0].user_attrs[ALIVE_AT]
        time.sleep(0.3)
        assert study.trials[0].user_attrs[ALIVE_AT] > first  # failed: said once, then dead to the others
    last = study.trials[0].user_attrs[ALIVE_AT]
    time.sleep(0.2)
    assert study.trials[0].user_attrs[ALIVE_AT] == last  # stopped with the trial


def test_workers_take_one_gpu_each_or_a_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(workers, "_visible_gpus", lambda: ["2", "5", "6", "7"])
    assert [env["CUDA_VISIBLE_DEVICES"] for env in workers.devices_for(4)] == ["2", "5", "6", "7"]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in workers.devices_for(2, per_worker=2)] == ["2,5", "6,7"]
    with pytest.raises(UserError, match="--workers 3: this machine shows 4 GPUs, and a worker takes 2 \\(2 a trial\\)"):
        workers.devices_for(3, per_worker=2)
    monkeypatch.setattr(workers, "_visible_gpus", list)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert [env["OMP_NUM_THREADS"] for env in workers.devices_for(3)] == ["2", "2", "2"]
    assert "CUDA_VISIBLE_DEVICES" not in workers.devices_for(1)[0]
    with pytest.raises(UserError, match="--workers 9: this machine has 8 CPU cores and no GPU: at most 8 workers"):
        workers.devices_for(9)


def test_workers_below_one_are_refused(tmp_path):
    with pytest.raises(UserError, match="--workers 0: at least 1"):
        tune(tmp_path / "search.yaml", 2, ["--config", "mnist_mlp"], workers=0)


@in_another_process
def test_two_workers_one_killed_mid_trial_end_the_study_with_every_trial_once(
    storage, mnist_dir, tmp_path, monkeypatch
):
    marker = tmp_path / "held"
    args = [*worker_args(mnist_dir, tmp_path, hold(marker, epoch=1)), "--trials=4", "--workers=2"]
    process = start([*args, "--storage", storage], tmp_path)
    pid = held_pid(marker, process)  # a worker, in epoch 1 of its trial: epoch 0's checkpoint written
    os.kill(pid, signal.SIGKILL)
    said, _ = process.communicate(timeout=300)
    assert process.returncode == 0, said
    assert "ended by signal 9: its trial goes to a worker that runs on" in said

    trials = optuna.load_study(study_name=tmp_path.name, storage=opened(storage)).get_trials()
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    (killed,) = [trial for trial in trials if trial.state == TrialState.FAIL]
    assert len(complete) == 4 and len(trials) == 5  # the killed one, continued by the survivor: none lost
    assert killed.user_attrs["pid"] == pid and killed.intermediate_values == {0: killed.intermediate_values[0]}
    (continued,) = [trial for trial in complete if trial.user_attrs.get("continues") == killed.number]
    assert continued.user_attrs["run"] == killed.user_attrs["run"] and continued.params == killed.params
    assert continued.user_attrs["pid"] != pid and sorted(continued.intermediate_values) == list(range(EPOCHS))
    assert len({trial.user_attrs["run"] for trial in complete}) == 4  # no trial run twice
    assert len({trial.params["model.init_args.lr"] for trial in complete}) == 4  # no two workers drew the same

    run = tmp_path / "lightning_logs" / tmp_path.name / continued.user_attrs["run"]
    assert not (run / "config.1.yaml").exists()  # continued from its own checkpoint: the same settings
    again = ["--config", str(run / "config.yaml"), "--ckpt_path=null", "--trainer.logger.init_args.version=again"]
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers ran: 1 thread each on 2 cores
    try:
        cli = stages.fit(again)
    finally:
        torch.set_num_threads(threads)
    assert cli.trainer.callback_metrics["val/acc_best"].item() == continued.value  # as if it had never stopped

    password = urllib.parse.urlsplit(storage).password
    if password:  # written nowhere, said nowhere
        assert password not in said
        for path in tmp_path.rglob("*"):
            assert not path.is_file() or password.encode() not in path.read_bytes(), path


@in_another_process
def test_a_worker_killed_before_its_first_checkpoint_leaves_its_values_to_a_new_run(mnist_dir, tmp_path):
    marker, journal = tmp_path / "held", tmp_path / "search.journal"
    args = [*worker_args(mnist_dir, tmp_path, hold(marker, epoch=0)), "--trials=4", "--workers=2"]
    process = start([*args, f"--storage={journal}"], tmp_path)
    os.kill(held_pid(marker, process), signal.SIGKILL)
    said, _ = process.communicate(timeout=300)
    assert process.returncode == 0, said
    trials = optuna.load_study(study_name=tmp_path.name, storage=opened(str(journal))).get_trials()
    (killed,) = [trial for trial in trials if trial.state == TrialState.FAIL]
    (again,) = [trial for trial in trials if trial.user_attrs.get("continues") == killed.number]
    assert again.state == TrialState.COMPLETE and again.params == killed.params
    assert again.user_attrs["run"] == f"trial_{again.number}" != killed.user_attrs["run"]  # the stopped one is kept
    assert (tmp_path / "lightning_logs" / tmp_path.name / killed.user_attrs["run"] / "config.yaml").is_file()
    assert f"(trial {killed.number} again: it stopped before its first checkpoint)" in said


@in_another_process
def test_ctrl_c_stops_every_worker_and_the_same_command_ends_the_study(postgres, mnist_dir, tmp_path):
    marker = tmp_path / "held"
    args = [*worker_args(mnist_dir, tmp_path, hold(marker, epoch=1, seconds=3)), "--trials=3", "--workers=2"]
    process = start([*args, "--storage", postgres], tmp_path)
    held = held_pid(marker, process)  # a worker in epoch 1 of its trial: Ctrl-C stops it after the step under way
    process.send_signal(signal.SIGINT)  # to the command alone, which passes it on to its workers
    said, _ = process.communicate(timeout=120)
    assert process.returncode == 130, said
    password = urllib.parse.urlsplit(postgres).password
    assert f"--storage {postgres.replace(password, '***')}` continues it" in said and password not in said
    stopped = optuna.load_study(study_name=tmp_path.name, storage=postgres).get_trials(states=(TrialState.FAIL,))
    (interrupted,) = [trial for trial in stopped if trial.user_attrs.get("pid") == held]  # worker 0's too, if in one
    run = tmp_path / "lightning_logs" / tmp_path.name / interrupted.user_attrs["run"]
    assert (run / "checkpoints" / "interrupted.ckpt").is_file()

    again = start([*args, "--storage", postgres], tmp_path)
    said, _ = again.communicate(timeout=300)
    assert again.returncode == 0, said
    assert f"trial {interrupted.number} ({Path('lightning_logs') / tmp_path.name / run.name}): " in said
    study = optuna.load_study(study_name=tmp_path.name, storage=postgres)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    continued = {trial.user_attrs.get("continues") for trial in study.trials}
    assert {trial.number for trial in stopped if "run" in trial.user_attrs} <= continued  # all with a run folder


@in_another_process
def test_a_trial_on_two_processes_trains_its_values_on_both_and_prunes_on_both(mnist_dir, tmp_path):
    space = {"model.init_args.lr": [0.01, 1e-9]}  # 1e-9: chance accuracy, pruned after its first epoch
    sampler = {"class_path": "GridSampler", "init_args": {"search_space": space}}
    pruner = {"class_path": "ThresholdPruner", "init_args": {"lower": 0.3}}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({"space": space, "sampler": sampler, "pruner": pruner}))
    record = json.dumps({"class_path": "tune_callbacks.RecordValues", "init_args": {"folder": str(tmp_path)}})
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
    args = worker_args(mnist_dir, tmp_path, f"--trainer.callbacks+={record}", *ddp)
    args[args.index("--search") + 1] = str(tmp_path / "grid.yaml")
    process = start([*args, "--trials=2"], tmp_path)
    said, _ = process.communicate(timeout=300)
    assert process.returncode == 0, said

    study = optuna.load_study(
        study_name=tmp_path.name, storage=f"sqlite:///{tmp_path}/lightning_logs/{tmp_path.name}/study.db"
    )
    assert len(study.trials) == 2  # failed: the other rank asked the study for trials of its own
    states = {trial.params["model.init_args.lr"]: trial.state for trial in study.trials}
    assert states == {0.01: TrialState.COMPLETE, 1e-9: TrialState.PRUNED}
    for trial in study.trials:
        ranks = [json.loads((tmp_path / f"{trial.user_attrs['run']}.{rank}.json").read_text()) for rank in (0, 1)]
        assert ranks == [{"lr": trial.params["model.init_args.lr"], "world_size": 2}] * 2  # both ranks, its values
    (pruned,) = study.get_trials(states=(TrialState.PRUNED,))
    assert list(pruned.intermediate_values) == [0]  # both ranks stopped after its first epoch, of three
