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
    (tmp_path / "tabular_mlp.yaml").unlink()  # the recipe moved away, its edited example table left
    (tmp_path / "examples" / "people.csv").write_text("mine\n")
    with pytest.raises(SystemExit):
        run_main(monkeypatch, "recipes", "--copy", "tabular_mlp", str(tmp_path))
    assert "examples/people.csv" in capsys.readouterr().err and not (tmp_path / "tabular_mlp.yaml").exists()
    assert (tmp_path / "examples" / "people.csv").read_text() == "mine\n"


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


OWN_TABLE = "--data.csv FILE --data.target COLUMN"  # how each table recipe's comment tells how to train on yours


@pytest.mark.parametrize("recipe", ["tabular_mlp", "tabular_scratch", "tabular_regression", "tabular_tabm"])
def test_a_table_recipes_own_table_line_trains_on_a_table_of_other_columns(recipe, tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    text = (CONFIGS / f"{recipe}.yaml").read_text()
    line = next(line for line in text.splitlines() if OWN_TABLE in line)
    options = line[line.index(OWN_TABLE) :].split()[4:]  # what the line adds to the file and the target
    assert options, line
    regression = recipe == "tabular_regression"
    rows = [f"{i % 7},{(i * 37) % 11},{(i * 3 + 1) % 5 + i / 8 if regression else i % 2}" for i in range(60)]
    (tmp_path / "mine.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    own = ["--data.csv=mine.csv", "--data.target=label", "--trainer.max_epochs=1", "--test_after_fit=false"]
    code, output = console("fit", "--config", recipe, *own, *(option.strip("'") for option in options))
    assert code == 0, output  # failed: "columns ['id'] (in drop) not in ...", then log1p's [income]
    code, output = console("fit", "--config", recipe, *own)  # without the line's options: one line, the fix
    assert code == 1 and "Leave them out (--data.drop '[]')" in output, output


def test_a_search_recipe_is_copied_by_its_listed_name_and_tune_takes_the_copy(monkeypatch, tmp_path, capsys):
    run_main(monkeypatch, "recipes", "--copy", "search/tabular_mlp", str(tmp_path))  # failed: "does not exist"
    copied = tmp_path / "search" / "tabular_mlp.yaml"
    assert copied.read_text() == (SEARCHES / "tabular_mlp.yaml").read_text()
    assert search_file(str(copied)) == copied  # a path: read as it is
    run_main(monkeypatch, "recipes")
    assert "searches (tune --search NAME; recipes --copy search/NAME):" in capsys.readouterr().out
