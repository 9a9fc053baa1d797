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


@pytest.mark.parametrize("argv, match", [
    (["--frozen"], r"`recipe='head_only'` trains from pretrained weights: give a pretrained `backbone`"),
    (["--backbone", "cnn", "--finetune"], r"`recipe='finetune'` trains from pretrained weights"),
    (["--weights", "DEFAULT"], r"`weights='DEFAULT'` trains from pretrained weights"),
    (["--backbone", "resnet18", "--weights", "DEFAULT"], r"needs `recipe` 'finetune' or 'head_only' \(--finetune / --frozen\)"),
    (["--backbone", "resnet_18"], r"Unknown `backbone` 'resnet_18'. Closest: 'resnet18'"),
    (["--backbone", "resnet18", "--frozen", "--weights", "IMAGENET9K"],
     r"`weights='IMAGENET9K'` is neither a weights name of backbone 'resnet18' \(IMAGENET1K_V1, DEFAULT\)"),
    (["--backbone", "efficientnet_lite0", "--frozen", "--weights", "IMAGENET1K_V1"],
     r"neither a weights name of backbone 'efficientnet_lite0' \(DEFAULT\) nor an existing state-dict file"),
])
def test_bad_backbone_settings_are_one_line_usage_errors(argv, match, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--methods", "erm", "--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("skshortcut benchmark: error: ")
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists()  # refused before anything was made


@pytest.mark.parametrize("argv, match", [
    (["--backbone", "efficientnet_lite0", "--frozen", "--finetune"], "not allowed with argument"),
    (["--image-size", "0"], "--image-size: must be >= 1, got 0"),
])
def test_backbone_argument_types_are_checked_by_argparse(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", *argv])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    (dict(recipe="frozen", backbone="resnet18"), r"`recipe` must be one of \('finetune', 'head_only'\)"),
    (dict(image_size=0), "`image_size` must be an int >= 1"),
    (dict(backbone=3), "`backbone` must be a backbone name"),
])
def test_run_benchmark_refuses_bad_backbone_settings_before_making_data(kwargs, match, monkeypatch):
    def boom(seed, scale):
        raise AssertionError("data made before the settings were checked")

    monkeypatch.setattr(DATASETS["colored-digits"], "make", boom)
    with pytest.raises((ValueError, TypeError), match=match):
        run_benchmark("colored-digits", ["erm"], echo=None, **kwargs)


def test_shared_erm_settings_follow_the_backbone_options():
    from skshortcut.bench import BenchmarkContext

    def params(**network):
        return BenchmarkContext("colored-digits", None, 3, "cpu", None, **network).erm_params()

    scratch = dict(DATASETS["colored-digits"].erm_params, random_state=3)
    assert params() == scratch  # no option: the data set's own SmallCNN, unchanged
    assert params(backbone="cnn", image_size=48) == {**scratch, "module": "cnn", "module__image_size": 48}
    # another backbone drops the SmallCNN's module__* settings; a recipe starts from the DEFAULT weights
    frozen = params(backbone="efficientnet_lite0", recipe="head_only", image_size=48, max_epochs=2)
    assert frozen == {"max_epochs": 2, "patience": None, "module": "efficientnet_lite0", "recipe": "head_only",
                      "weights": "DEFAULT", "module__image_size": 48, "random_state": 3}
    tuned = params(backbone="resnet18", recipe="finetune", weights="IMAGENET1K_V1")
    assert tuned["weights"] == "IMAGENET1K_V1" and tuned["recipe"] == "finetune"
    assert not any(k.startswith("module__") for k in tuned)
    assert params(backbone="resnet18")["module"] == "resnet18" and "weights" not in params(backbone="resnet18")
