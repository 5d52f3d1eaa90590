"""Model quality for content authors (issue 11): the report of a model, its
history across models, `aftercare evaluate --record/--history`, and the SVG
plots for the authoring page. Real files throughout: the trained model, the
training data in data/nlu, the measuring sets in tests/, history directories
under tmp_path."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aftercare.quality import history
from aftercare.quality.archive import identify, intent_classifier
from aftercare.quality.crossval import (
    ConfusedPair, CrossValidationError, PendingCrossValidation, confused_pairs, focus, inputs_key,
)
from aftercare.quality.record import RecordError
from aftercare.quality.training import (
    THIN_INTENT_EXAMPLES, TrainingSet, load_training_set, thin_intents, trained_on,
)
from aftercare.services import MODEL_DIR
from aftercare.settings import PROJECT_ROOT
from cli.main import main
from review.plots import (
    PALETTE, bar_chart_svg, confusion_heatmap_svg, contrast, f1_over_models_svg,
)

MODEL = MODEL_DIR / "aftercare.tar.gz"
TRAINING = PROJECT_ROOT / "data" / "nlu"
HOLDOUT = PROJECT_ROOT / "tests" / "holdout_messages.tsv"
SVG = "{http://www.w3.org/2000/svg}"
needs_model = pytest.mark.skipif(not MODEL.exists(), reason="no trained model (make model)")
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def quality_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "quality"
    monkeypatch.setenv("AFTERCARE_QUALITY_DIR", str(directory))
    return directory


# --------------------------------------------------------------------------- the model's id

def _archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_a_model_is_known_by_its_hash_and_rasas_training_time(tmp_path):
    path = _archive(tmp_path / "m.tar.gz",
                    {"/metadata.json": b'{"trained_at": "2026-05-04T03:02:01.500000"}'})
    identity = identify(path)
    assert identity.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert identity.id == identity.sha256[:12]
    assert identity.trained_at == datetime(2026, 5, 4, 3, 2, 1, 500000, tzinfo=timezone.utc)


def test_without_metadata_the_training_time_is_the_archives_mtime(tmp_path):
    path = _archive(tmp_path / "m.tar.gz", {"other.txt": b"x"})
    stamp = datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))
    assert identify(path).trained_at == datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert intent_classifier(path) is None


def test_a_missing_archive_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read the model"):
        identify(tmp_path / "none.tar.gz")


@needs_model
def test_the_shipped_model_was_trained_on_data_nlu_and_an_added_example_shows(tmp_path):
    archived = intent_classifier(MODEL)
    assert archived is not None and archived.settings.c == 30.0
    training = load_training_set(TRAINING)
    assert trained_on(archived, training)
    copy = tmp_path / "nlu"
    shutil.copytree(TRAINING, copy)
    with open(copy / "conversation.yml", "a", encoding="utf-8") as handle:
        handle.write("\n- intent: greet\n  examples: |\n    - hiya clinic folks\n")
    changed = load_training_set(copy)
    assert len(changed.texts) == len(training.texts) + 1
    assert not trained_on(archived, changed)


# --------------------------------------------------------------------------- training data

def test_thin_intents_are_those_under_the_threshold_fewest_first():
    counts = {"a": 5, "b": THIN_INTENT_EXAMPLES, "c": THIN_INTENT_EXAMPLES - 1, "d": 5, "e": 200}
    assert thin_intents(counts) == {"a": 5, "d": 5, "c": THIN_INTENT_EXAMPLES - 1}
    assert thin_intents({"a": 40}) == {}


def test_unreadable_training_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such training data"):
        load_training_set(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.yml").write_text('version: "3.1"\nnlu: []\n')
    with pytest.raises(ValueError, match="no intent examples"):
        load_training_set(tmp_path / "empty")


# --------------------------------------------------------------------------- cross-validation

def test_confused_pairs_count_both_directions_most_confused_first():
    labels = ["a", "b", "c", "d"]
    matrix = [[9, 2, 0, 1],
              [3, 8, 0, 0],
              [0, 4, 7, 0],
              [1, 0, 0, 5]]
    assert confused_pairs(labels, matrix) == [
        ConfusedPair("a", "b", 2, 3), ConfusedPair("b", "c", 0, 4), ConfusedPair("a", "d", 1, 1)]
    assert [p.total for p in confused_pairs(labels, matrix, top=2)] == [5, 4]
    view = focus(labels, matrix, confused_pairs(labels, matrix), limit=3)
    assert view.labels == ["a", "b", "c"]
    assert view.matrix == [[9, 2, 0], [3, 8, 0], [0, 4, 7]]
    assert view.row_totals == [12, 11, 11]


def _real_subset(intents: set[str]) -> TrainingSet:
    full = load_training_set(TRAINING)
    keep = [i for i, intent in enumerate(full.intents) if intent in intents]
    return TrainingSet([full.texts[i] for i in keep], [full.intents[i] for i in keep],
                       full.treatment_names, "subset")


def test_cross_validation_in_workers_reads_every_example_once_as_in_process():
    training = _real_subset({"ask_washing", "ask_skincare_products", "affirm", "thank"})
    from aftercare.understanding.intent_model import ModelSettings

    parallel = PendingCrossValidation(training.texts, training.intents, ModelSettings(),
                                      training.treatment_names, folds=3, workers=2).result()
    serial = PendingCrossValidation(training.texts, training.intents, ModelSettings(),
                                    training.treatment_names, folds=3, workers=1).result()
    assert parallel.matrix == serial.matrix
    assert parallel.labels == sorted(set(training.intents))
    counts = training.counts()
    assert [sum(row) for row in parallel.matrix] == [counts[label] for label in parallel.labels]
    correct = sum(parallel.matrix[i][i] for i in range(len(parallel.labels)))
    assert parallel.accuracy == pytest.approx(correct / len(training.texts))
    assert 0.5 < parallel.accuracy < 1.0   # held-out reading: washing and products get mixed up
    assert parallel.macro_f1 == pytest.approx(sum(parallel.per_intent_f1.values()) / 4)
    assert parallel.confused_pairs()[0].total > 0
    stored = parallel.as_json()
    assert stored["folds"] == 3 and stored["n"] == len(training.texts)
    assert stored["cpu_seconds"] > 0


def test_a_cancelled_cross_validation_leaves_no_worker_behind():
    import multiprocessing

    from aftercare.understanding.intent_model import ModelSettings

    training = _real_subset({"ask_washing", "ask_skincare_products"})
    pending = PendingCrossValidation(training.texts, training.intents, ModelSettings(),
                                     training.treatment_names, folds=3, workers=2)
    assert len(multiprocessing.active_children()) == 2
    pending.cancel()
    assert multiprocessing.active_children() == []


def test_the_inputs_key_changes_with_anything_the_figures_depend_on():
    from aftercare.understanding.intent_model import ModelSettings

    key = inputs_key("data1", ModelSettings(), ["skinpen", "microneedling"])
    assert key == inputs_key("data1", ModelSettings(), ["microneedling", "skinpen"])
    assert len({key, inputs_key("data2", ModelSettings(), ["skinpen", "microneedling"]),
                inputs_key("data1", ModelSettings(c=10.0), ["skinpen", "microneedling"]),
                inputs_key("data1", ModelSettings(), ["skinpen"]),
                inputs_key("data1", ModelSettings(), ["skinpen", "microneedling"], folds=5)}) == 5


def test_a_stored_run_is_found_by_its_key_and_names_the_model_it_ran_for(quality_dir):
    history.save(_record("aaaaaaaaaaaa", T0, {"greet": 0.8, "thank": 0.9}), quality_dir)
    later = _record("bbbbbbbbbbbb", T0 + timedelta(days=1), {"greet": 0.8, "thank": 0.9})
    later["cross_validation"].update(key="key-aaaaaaaaaaaa", reused_from="aaaaaaaaaaaa")
    history.save(later, quality_dir)
    found = history.cross_validation_for(quality_dir, "key-aaaaaaaaaaaa")
    assert found is not None and found["reused_from"] == "aaaaaaaaaaaa"
    assert found["matrix"] == [[10, 1], [1, 10]]
    assert history.cross_validation_for(quality_dir, "key-other") is None


def test_cross_validation_needs_two_intents_with_enough_examples():
    from aftercare.understanding.intent_model import ModelSettings

    with pytest.raises(CrossValidationError, match="two intents"):
        PendingCrossValidation(["hi", "hello", "hey", "bye"], ["greet", "greet", "greet", "bye"],
                               ModelSettings(), [], folds=3, workers=1)


# --------------------------------------------------------------------------- history

def _record(model_id: str, trained_at: datetime, f1: dict[str, float], *, accuracy: float = 0.9,
            recorded_at: datetime | None = None, set_sha: str = "s1") -> dict:
    """A stored report as report.build_report writes it (test_record_* below
    checks a real one goes through the same reader)."""
    labels = sorted(f1)
    return {
        "schema": 1,
        "recorded_at": (recorded_at or trained_at + timedelta(minutes=5)).isoformat(),
        "model": {"id": model_id, "sha256": model_id * 5, "trained_at": trained_at.isoformat(),
                  "path": "models/aftercare.tar.gz"},
        "sets": {"dev_messages": {
            "path": "dev_messages.tsv", "sha256": set_sha, "n": 100, "intent_accuracy": accuracy,
            "intent_macro_f1": accuracy - 0.01, "red_flag_recall": 1.0, "red_flag_precision": 0.95,
            "per_intent": {k: {"f1": v, "support": 10} for k, v in f1.items()},
            "misclassified": 10, "missed_red_flags": 0, "false_red_flags": 2}},
        "cross_validation": {
            "folds": 3, "seed": 42, "n": 60, "accuracy": 0.88, "macro_f1": 0.87, "seconds": 50.0,
            "cpu_seconds": 90.0,
            "labels": labels, "matrix": [[10 if i == j else 1 for j in labels] for i in labels],
            "per_intent_f1": f1, "confused_pairs": [
                {"a": labels[0], "b": labels[1], "a_as_b": 1, "b_as_a": 1, "total": 2}],
            "training_data": "data/nlu", "training_sha256": "t", "model_trained_on_it": True,
            "key": f"key-{model_id}", "reused_from": None},
        "training_examples": {k: 12 for k in labels},
        "thin_intents": {"threshold": 30, "intents": {labels[0]: 12}},
        "seconds": 60.0,
    }


def test_history_keeps_one_report_per_model_newest_wins(quality_dir):
    first = _record("aaaaaaaaaaaa", T0, {"greet": 0.8, "thank": 0.9}, recorded_at=T0)
    again = _record("aaaaaaaaaaaa", T0, {"greet": 0.85, "thank": 0.9},
                    recorded_at=T0 + timedelta(hours=1))
    assert history.save(first, quality_dir) == quality_dir / "aaaaaaaaaaaa.json"
    history.save(again, quality_dir)
    loaded = history.load(quality_dir)
    assert loaded.warnings == []
    assert [e.record.sets["dev_messages"].per_intent["greet"].f1 for e in loaded.entries] == [0.85]
    assert sorted(p.name for p in quality_dir.iterdir()) == ["aaaaaaaaaaaa.json"]


def test_history_is_in_training_order_and_skips_what_it_cannot_read(quality_dir):
    history.save(_record("bbbbbbbbbbbb", T0 + timedelta(days=2), {"greet": 0.9, "thank": 1.0}),
                 quality_dir)
    history.save(_record("aaaaaaaaaaaa", T0, {"greet": 0.8, "thank": 1.0}), quality_dir)
    (quality_dir / "broken.json").write_text("{not json")
    (quality_dir / "cccccccccccc.json").write_text(json.dumps({"schema": 1, "model": {}}))
    wrong_name = _record("dddddddddddd", T0, {"greet": 0.5, "thank": 0.5})
    (quality_dir / "eeeeeeeeeeee.json").write_text(json.dumps(wrong_name))
    loaded = history.load(quality_dir)
    assert [e.record.model.id for e in loaded.entries] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert len(loaded.warnings) == 3
    assert any(str(quality_dir / "broken.json") in w and "JSON" in w for w in loaded.warnings)
    assert any(str(quality_dir / "cccccccccccc.json") in w for w in loaded.warnings)
    assert any(str(quality_dir / "eeeeeeeeeeee.json") in w and "dddddddddddd" in w
               for w in loaded.warnings)
    assert [e.record.model.id for e in loaded.last(1)] == ["bbbbbbbbbbbb"]


def test_a_report_that_could_not_be_read_back_is_not_saved(quality_dir):
    bad = _record("aaaaaaaaaaaa", T0, {"greet": 0.8, "thank": 0.9})
    bad["cross_validation"]["matrix"] = [[1]]
    with pytest.raises(RecordError, match="matrix"):
        history.save(bad, quality_dir)
    naive = _record("aaaaaaaaaaaa", T0, {"greet": 0.8, "thank": 0.9})
    naive["recorded_at"] = "2030-03-01T09:00:00"
    with pytest.raises(RecordError, match="time zone"):
        history.save(naive, quality_dir)
    assert not quality_dir.exists() or list(quality_dir.iterdir()) == []


def test_per_intent_f1_across_models_with_the_change(quality_dir):
    history.save(_record("aaaaaaaaaaaa", T0, {"greet": 0.8, "thank": 0.9}), quality_dir)
    history.save(_record("bbbbbbbbbbbb", T0 + timedelta(days=1),
                         {"greet": 0.6, "thank": 0.95, "deny": 0.7}, set_sha="s2"), quality_dir)
    entries = history.load(quality_dir).entries
    rows = history.per_intent_f1(entries, "dev_messages")
    assert [(r.intent, r.f1, r.change, r.support) for r in rows] == [
        ("greet", [0.8, 0.6], -0.2, 10), ("deny", [None, 0.7], None, 10),
        ("thank", [0.9, 0.95], 0.05, 10)]
    assert history.set_changed(entries, "dev_messages") == [False, True]
    cv = history.per_intent_f1(entries, history.CROSS_VALIDATION)
    assert [r.intent for r in cv] == ["greet", "deny", "thank"] and cv[0].support == 12
    series = history.f1_series(entries, "dev_messages", limit=2)
    assert series.lines == {"greet": [0.8, 0.6], "thank": [0.9, 0.95]}
    assert series.models == ["01 Mar 09:00", "02 Mar 09:00"]


# --------------------------------------------------------------------------- the CLI

def test_history_without_any_report_is_one_clear_line(quality_dir, capsys):
    assert main(["evaluate", "--history"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"evaluate: no quality history yet in {quality_dir}: record one with "
                   "`aftercare evaluate FILE... --record` (make evaluate does)"]


def test_history_prints_figures_side_by_side_and_names_a_corrupt_file(quality_dir, capsys):
    for day, greet in enumerate((0.5, 0.8, 0.6)):
        history.save(_record(f"{day}" * 12, T0 + timedelta(days=day),
                             {"greet": greet, "thank": 0.9}, accuracy=0.9 + day / 100),
                     quality_dir)
    (quality_dir / "zzz.json").write_text("[]")
    assert main(["evaluate", "--history", "--last", "2"]) == 0
    captured = capsys.readouterr()
    assert f"skipped {quality_dir / 'zzz.json'}" in captured.err
    out = captured.out
    assert "the last 2 of 3 models" in out
    assert "000000000000" not in out and "111111111111" in out and "222222222222" in out
    assert "0.910" in out and "0.920" in out
    greet_line = next(line for line in out.splitlines() if line.strip().startswith("greet"))
    assert greet_line.split() == ["greet", "10", "0.80", "0.60", "-0.200"]
    assert "affirm" not in out
    pair_line = next(line for line in out.splitlines() if line.endswith("greet / thank"))
    assert pair_line.split() == ["2", "1", "1", "greet", "/", "thank"]
    assert "intents with fewer than 30 training examples: greet (12)" in out


@pytest.mark.parametrize("argv, message", [
    (["evaluate"], "give a TSV file to measure, or --history"),
    (["evaluate", "--last", "3"], "--last goes with --history"),
    (["evaluate", str(HOLDOUT), "--training-data", "x"], "--training-data goes with --record"),
    (["evaluate", "--history", "--record"], "--record needs the measuring sets"),
])
def test_wrong_combinations_are_clear_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_last_must_be_a_positive_number(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--history", "--last", "0"])
    assert "must be a whole number from 1" in capsys.readouterr().err


@needs_model
def test_two_sets_of_the_same_name_are_refused(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    shutil.copy(HOLDOUT, tmp_path / "a" / "holdout_messages.tsv")
    assert main(["evaluate", str(HOLDOUT), str(tmp_path / "a" / "holdout_messages.tsv"),
                 "--record"]) == 2
    assert "two measuring sets are named 'holdout_messages'" in capsys.readouterr().err


@needs_model
def test_record_measures_the_real_model_and_history_reads_it(tmp_path, quality_dir, capsys):
    """A real report: the shipped model on the hold-out set, cross-validated on
    two real training files (a subset, so the run is short and the report says
    the model was not trained on it). The bar fails, and the report is kept."""
    small = tmp_path / "nlu"
    small.mkdir()
    for name in ("conversation.yml", "treatment_names.yml"):
        shutil.copy(TRAINING / name, small / name)
    status = main(["evaluate", str(HOLDOUT), "--record", "--training-data", str(small),
                   "--min-intent-accuracy", "0.999"])
    captured = capsys.readouterr()
    assert status == 1
    assert "FAILED: holdout_messages: intent accuracy" in captured.out
    assert f"was not trained on {small}" in captured.err
    model_id = hashlib.sha256(MODEL.read_bytes()).hexdigest()[:12]
    stored = json.loads((quality_dir / f"{model_id}.json").read_text())
    figures = stored["sets"]["holdout_messages"]
    assert figures["n"] == 160
    assert sum(f["support"] for f in figures["per_intent"].values()) == 160
    assert 0.5 < figures["intent_accuracy"] < 0.999
    assert figures["red_flag_recall"] == 1.0
    cv = stored["cross_validation"]
    assert cv["model_trained_on_it"] is False
    assert cv["n"] == sum(stored["training_examples"].values())
    assert sum(map(sum, cv["matrix"])) == cv["n"]
    assert "text" not in json.dumps(stored["sets"])   # figures only, never the messages
    assert main(["evaluate", "--history"]) == 0
    out = capsys.readouterr().out
    assert model_id in out and "holdout_messages (" in out
    assert "! the model was not trained on this data" in out
    # Again: the same inputs, so the stored cross-validation is kept, not run again.
    assert main(["evaluate", str(HOLDOUT), "--record", "--training-data", str(small)]) == 0
    assert "cross-validation (3-fold" in capsys.readouterr().out
    again = json.loads((quality_dir / f"{model_id}.json").read_text())
    assert again["cross_validation"]["reused_from"] == model_id
    assert again["cross_validation"]["matrix"] == cv["matrix"]
    assert again["recorded_at"] > stored["recorded_at"]


# --------------------------------------------------------------------------- plots

NASTY = 'a<b>&"c\'d'


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    assert root.get("width") == "100%" and root.get("viewBox", "").startswith("0 0 ")
    assert "style=" not in svg and "<script" not in svg
    return root


def _cells(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(SVG + "g") if g.get("class") == "cell"]


def test_heatmap_has_a_cell_per_entry_with_its_number_and_escapes_names():
    labels = ["greet", NASTY, "thank"]
    matrix = [[50, 3, 0], [7, 40, 1], [0, 0, 12]]
    root = _parse(confusion_heatmap_svg(labels, matrix))
    cells = _cells(root)
    assert len(cells) == 9
    for cell in cells:
        i, j = int(cell.get("data-row")), int(cell.get("data-col"))
        assert int(cell.get("data-count")) == matrix[i][j]
        assert f": {matrix[i][j]} of {sum(matrix[i])}" in cell.find(SVG + "title").text
        number = cell.find(SVG + "text")
        assert (number is None) == (matrix[i][j] == 0)
        if number is not None:
            assert number.text == str(matrix[i][j])
            fill = cell.find(SVG + "rect").get("fill")
            assert contrast(fill, number.get("fill")) >= 4.5
    texts = [t.text for t in root.iter(SVG + "text")]
    assert f"2. {NASTY}" in texts
    assert any(t.text == f"{NASTY} read as greet: 7 of 48 (15%)"
               for t in root.iter(SVG + "title"))


def test_heatmap_of_a_part_keeps_the_intents_full_totals():
    root = _parse(confusion_heatmap_svg(["a", "b"], [[5, 5], [0, 10]], row_totals=[20, 10]))
    titles = [c.find(SVG + "title").text for c in _cells(root)]
    assert titles[0] == "a: 5 of 20 read right (25%)"


def test_heatmap_of_nothing_and_of_a_wrong_matrix():
    root = _parse(confusion_heatmap_svg([], []))
    assert _cells(root) == []
    assert any("No cross-validation" in (t.text or "") for t in root.iter(SVG + "text"))
    with pytest.raises(ValueError, match="2 x 2"):
        confusion_heatmap_svg(["a", "b"], [[1, 2]])


def test_f1_over_models_draws_a_point_per_value_and_breaks_lines_at_gaps():
    series = history.F1Series(models=["01 Mar", "02 Mar", "03 Mar"],
                              lines={"greet": [0.5, 0.8, 0.6], NASTY: [0.9, None, 0.7]})
    root = _parse(f1_over_models_svg(series))
    groups = {g.get("data-name"): g for g in root.iter(SVG + "g") if g.get("class") == "series"}
    assert set(groups) == {"greet", NASTY}
    assert len(groups["greet"].findall(SVG + "circle")) == 3
    assert len(groups["greet"].findall(SVG + "polyline")) == 1
    assert len(groups[NASTY].findall(SVG + "circle")) == 2
    assert groups[NASTY].findall(SVG + "polyline") == []   # no line across the gap
    titles = [t.text for t in groups["greet"].iter(SVG + "title")]
    assert "greet, model 02 Mar: F1 0.80" in titles
    legend = [t.text for t in groups[NASTY].iter(SVG + "text")]
    assert legend == [f"{NASTY}  0.70"]


def test_f1_over_models_of_nothing_and_of_mismatched_series():
    root = _parse(f1_over_models_svg(history.F1Series([], {})))
    assert any("No models" in (t.text or "") for t in root.iter(SVG + "text"))
    with pytest.raises(ValueError, match="greet: 1 values for 2 models"):
        f1_over_models_svg(history.F1Series(["a", "b"], {"greet": [0.5]}))


def test_line_colours_stand_out_from_the_white_page():
    assert all(contrast(colour, "#ffffff") >= 3.0 for colour in PALETTE)


def test_bar_chart_one_bar_per_item():
    root = _parse(bar_chart_svg([(NASTY, 12), ("thank", 25)], "Thin intents", digits=0))
    bars = [g for g in root.iter(SVG + "g") if g.get("class") == "bar"]
    assert [b.get("data-value") for b in bars] == ["12", "25"]
    assert bars[0].find(SVG + "title").text == f"{NASTY}: 12"
    widths = [float(b.find(SVG + "rect").get("width")) for b in bars]
    assert widths[0] < widths[1]
    empty = _parse(bar_chart_svg([], "Thin intents"))
    assert not [g for g in empty.iter(SVG + "g") if g.get("class") == "bar"]
