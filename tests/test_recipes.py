"""The recipes inside the package: by name, listed, copied out; and a run with a logger other than TensorBoard."""

from __future__ import annotations

import logging
import sys

import pytest
import yaml
from conftest import CONFIGS, VAL_SIZE

from nnmodules.cli import main
from nnmodules.cli import run as litmodules
from nnmodules.cli.recipes import SEARCHES, config_argument, search_file


def run_main(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["litmodules", *args])
    main()


def test_recipes_lists_each_recipe_and_search_with_what_it_trains(monkeypatch, capsys):
    run_main(monkeypatch, "recipes")
    lines = capsys.readouterr().out.splitlines()
    for path in [*CONFIGS.glob("*.yaml"), *SEARCHES.glob("*.yaml")]:
        first = path.read_text().splitlines()[0].removeprefix("# ")
        assert any(line.startswith(f"{path.stem} ") and line.endswith(first) for line in lines), path
    assert lines[0] == "recipes (litmodules fit --config NAME):"


def test_copy_writes_the_recipe_and_its_table_and_never_over_a_file(monkeypatch, tmp_path, capsys):
    run_main(monkeypatch, "recipes", "--copy", "tabular_mlp", str(tmp_path))
    assert (tmp_path / "tabular_mlp.yaml").read_text() == (CONFIGS / "tabular_mlp.yaml").read_text()
    assert (tmp_path / "examples" / "people.csv").read_bytes() == (CONFIGS / "examples" / "people.csv").read_bytes()
    (tmp_path / "tabular_mlp.yaml").write_text("# mine\n")
    with pytest.raises(SystemExit) as stop:
        run_main(monkeypatch, "recipes", "--copy", "tabular_mlp", str(tmp_path))
    assert stop.value.code == 1 and "tabular_mlp.yaml" in capsys.readouterr().err
    assert (tmp_path / "tabular_mlp.yaml").read_text() == "# mine\n"


def test_a_recipe_by_name_reads_its_example_table_from_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: nothing of the repository's
    settings = yaml.safe_load(config_argument("tabular_scratch"))
    assert settings["data"]["init_args"]["csv"] == str(CONFIGS / "examples" / "people.csv")
    assert config_argument(str(CONFIGS / "mnist_mlp.yaml")) == str(CONFIGS / "mnist_mlp.yaml")  # a path as it is
    assert search_file("mnist_mlp") == SEARCHES / "mnist_mlp.yaml"
    text = "trainer:\n  max_epochs: 2\n" * 200  # YAML given in place of a file, as LightningCLI takes it
    assert config_argument(text) == text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mnist_mpl", "mnist_mpl: no such file, nor recipe. Did you mean mnist_mlp? Recipes: fashion_mlp, "),
        ("configs/mnist_mlp.yaml", "configs/mnist_mlp.yaml does not exist; the recipe of that name is `mnist_mlp`"),
        ("my/nope.yaml", "my/nope.yaml: no such file, nor recipe. Recipes: fashion_mlp, "),
    ],
)
def test_a_config_that_is_neither_file_nor_recipe_is_one_error(value, message, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        run_main(monkeypatch, "fit", "--config", value)
    error = capsys.readouterr().err
    assert stop.value.code == 1 and error.startswith(f"error: {message}"), error


def test_a_csv_logger_run_keeps_its_figures_as_png_and_says_where_it_is(mnist_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    data = [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    args = ["fit", "--config", "mnist_mlp", *data, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false"]
    args += ["--trainer.logger=CSVLogger", "--trainer.logger.save_dir=logs", "--test_after_fit=false"]
    with caplog.at_level(logging.INFO):
        cli = litmodules(args)
    run = tmp_path / "logs" / "mnist_mlp" / "version_0"  # the recipe's logger name, kept
    assert cli.trainer.log_dir == str(run.relative_to(tmp_path))
    assert (run / "metrics.csv").is_file() and (run / "hparams.yaml").is_file()
    figures = sorted(path.name for path in (run / "figures").iterdir())
    assert figures == ["classification_confusion-step4.png"]  # after epoch 2, the end too: drawn once (none wrong)
    assert f"run folder: {run.relative_to(tmp_path)} (metrics.csv" in caplog.text
    assert "tensorboard --logdir" not in caplog.text
    assert caplog.text.count("HParams: the tab is TensorBoard's; with CSVLogger") == 1
