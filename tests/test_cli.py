import json

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
    assert report["results"][1]["extra"]["best_C"] > 0
    assert (out / "group_accuracies.png").stat().st_size > 1000


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
