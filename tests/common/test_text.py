"""common.text: the one table renderer and the suggestions every command makes."""

from __future__ import annotations

from common.text import did_you_mean, table, timings


def test_table_aligns_columns_two_spaces_apart_with_numbers_on_the_right() -> None:
    lines = table([["vgg16", "512", "download"], ["efficientnet_lite0", "1,280", "pip"]],
                  ["backbone", "features", "weights"], rule=True, right={1})
    assert lines == [
        "backbone            features  weights",
        "------------------  --------  --------",
        "vgg16                    512  download",
        "efficientnet_lite0     1,280  pip",
    ]


def test_table_rules_only_named_columns_and_drops_trailing_spaces() -> None:
    lines = table([["1", "logreg", ""], ["10", "rf", "x"]], ["", "model", "note"], rule=True,
                  right={0})
    assert lines == ["    model   note", "    ------  ----", " 1  logreg", "10  rf      x"]
    assert table([]) == []


def test_did_you_mean_suggests_close_names_and_known_aliases() -> None:
    assert did_you_mean("resnet5", ["resnet50", "resnet101", "vgg16"]) == \
        "did you mean resnet50 or resnet101? "
    assert did_you_mean("Logistic-Regression", ["logreg"], {"logisticregression": "logreg"}) \
        == "did you mean logreg? "
    assert did_you_mean("zzz", ["logreg", "rf"]) == ""


def test_timings_leave_start_up_out_of_the_rate() -> None:
    assert timings(12.0, 2.0, 10.0, 150, "extraction") == \
        "12.0 s: start-up 2.0 s, extraction 10.0 s at 15.0 images/s"
    assert timings(0.0, 0.0, 0.0, 0, "prediction").endswith("at 0.0 images/s")
