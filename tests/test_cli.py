import json
import re

import pytest

from skshortcut.bench import DATASETS, METHODS, format_table, run_benchmark
from skshortcut.cli import main


def test_benchmark_command_writes_table_json_and_figure(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["benchmark", "--methods", "erm,dfr", "--scale", "0.05", "--max-epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "worst-group" in printed and "val groups" in printed
    report = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in report["results"]] == ["erm", "dfr"]
    for r in report["results"]:
        assert 0 <= r["worst_group_accuracy"] <= r["accuracy"] <= 1
        assert len(r["group_accuracy"]) == 4 and r["seconds"] > 0
        low, high = r["worst_group_ci"]
        assert 0 <= low <= r["worst_group_accuracy"] <= high <= 1
        assert set(r["group_ci"]) == set(r["group_accuracy"])
        assert f"{r['worst_group_accuracy']:.3f} [{low:.3f}, {high:.3f}]" in printed
    assert report["confidence"] == 0.95 and report["n_bootstrap"] == 1000
    assert report["results"][1]["extra"]["best_C"] > 0
    assert (out / "group_accuracies.png").stat().st_size > 1000
    assert "| erm |" in (out / "results.md").read_text()


def test_unknown_method_and_dataset_are_usage_errors(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--methods", "nope"])
    assert "Unknown method" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "--dataset", "imagenet"])


def test_help_lists_datasets_and_methods(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    text = capsys.readouterr().out
    for name in list(DATASETS) + list(METHODS):
        assert name in text


def test_run_benchmark_validates_and_formats():
    with pytest.raises(ValueError, match="`scale` must be > 0"):
        run_benchmark("colored-digits", ["erm"], scale=0)
    table = format_table(
        {
            "dataset": "d",
            "seed": 0,
            "ceiling": 0.75,
            "results": [
                {"method": "erm", "labels": "none", "accuracy": 0.9, "worst_group_accuracy": 0.1,
                 "group_accuracy": {"a": 0.1, "b": 0.9}, "seconds": 1.0, "extra": {"ari": 0.5}}
            ],
        }
    )
    assert "ceiling (label noise): 0.750" in table and "erm: ari=0.500" in table


@pytest.mark.parametrize("argv, match", [
    (["--device", "tpu9"], "`device` must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device; got 'tpu9'"),
    (["--scale", "1e9"], "`scale` must be at most 20, got 1e\\+09: scale 1 makes up to 8,000 images"),
    (["--seed", "-1"], r"`seed` must be an int in \[0, 2\*\*32 - 1\]"),
])
def test_bad_settings_are_one_line_usage_errors(argv, match, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--methods", "erm", "--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("skshortcut benchmark: error: ")
    assert re.search(match, err)
    assert "Traceback" not in err


def test_unwritable_out_is_a_usage_error_before_any_work(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--methods", "erm", "--out", str(blocker / "report")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`out` folder" in err and "cannot be written" in err


@pytest.mark.parametrize("argv, match", [
    (["--max-epochs", "0"], "--max-epochs: must be >= 1, got 0"),
    (["--scale", "0"], "--scale: must be a finite number > 0"),
    (["--scale", "nan"], "--scale: must be a finite number > 0"),
])
def test_argument_types_are_checked_by_argparse(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", *argv])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_epochs=0), "`max_epochs` must be an int >= 1"),
    (dict(scale=float("inf")), "`scale` must be > 0"),
    (dict(scale=25), "`scale` must be at most 20"),
    (dict(device="tpu9"), "`device` must be"),
])
def test_run_benchmark_refuses_bad_settings_before_making_data(kwargs, match, monkeypatch):
    from skshortcut.bench import DATASETS

    def boom(seed, scale):  # the data must not even be made
        raise AssertionError("data made before the settings were checked")

    monkeypatch.setattr(DATASETS["colored-digits"], "make", boom)
    with pytest.raises(ValueError, match=match):
        run_benchmark("colored-digits", ["erm"], echo=None, **kwargs)


def test_format_table_and_markdown_show_the_worst_group_interval():
    report = {
        "dataset": "d", "seed": 0, "confidence": 0.95, "n_bootstrap": 1000,
        "results": [
            {"method": "erm", "labels": "none", "accuracy": 0.9, "worst_group_accuracy": 0.1,
             "worst_group_ci": [0.05, 0.2], "group_accuracy": {"a": 0.1, "b": 0.9}, "seconds": 1.0},
        ],
    }
    from skshortcut.bench.core import format_markdown

    assert "0.100 [0.050, 0.200]" in format_table(report)
    assert "95% bootstrap interval" in format_table(report)
    md = format_markdown(report)
    assert "| erm | none | 0.900 | 0.100 [0.050, 0.200] | 0.100 | 0.900 | 1.0 |" in md
