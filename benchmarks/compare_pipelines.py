"""Compare NLU pipelines side by side, in one run: 5-fold cross-validation on
the training data, the measuring set, training time and model load time.

    .venv/bin/python benchmarks/compare_pipelines.py --eval ../shared/eval/dev_messages.tsv \
        tests/long_messages.tsv

Writes the table to docs/pipeline-comparison.md. The configurations compared
are the files in benchmarks/pipelines/.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from aftercare.evaluation import classifier_intent, quiet_rasa_logs, read_examples  # noqa: E402
from aftercare.language import ensure_pipeline  # noqa: E402
from aftercare.settings import get_settings  # noqa: E402


def train(config: Path, nlu_file: Path, out: Path) -> tuple[Path, float]:
    from rasa.model_training import train_nlu

    started = time.perf_counter()
    model = train_nlu(str(config), str(nlu_file), str(out), fixed_model_name="nlu")
    return Path(model), time.perf_counter() - started


def load(model: Path):
    from rasa.core.agent import Agent

    started = time.perf_counter()
    agent = Agent.load(str(model))
    return agent, time.perf_counter() - started


def predict(agent, texts: list[str]) -> list[str]:
    loop = asyncio.new_event_loop()
    try:
        return [classifier_intent(loop.run_until_complete(agent.parse_message(t)))[0]
                for t in texts]
    finally:
        loop.close()


def write_nlu(examples, path: Path, lookup_tables=()) -> None:
    from rasa.shared.nlu.training_data.training_data import TrainingData

    path.write_text(TrainingData(training_examples=list(examples),
                                 lookup_tables=list(lookup_tables)).nlu_as_yaml())


def scores(gold: list[str], predicted: list[str]) -> tuple[float, float]:
    accuracy = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
    macro = f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0)
    return accuracy, float(macro)


def compare(config: Path, examples, lookups, eval_sets, folds: int, work: Path) -> dict:
    intents = [e.get("intent") for e in examples]
    fold_scores = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=42)
    for number, (train_idx, test_idx) in enumerate(splitter.split(examples, intents)):
        fold_dir = work / f"{config.stem}-fold{number}"
        fold_dir.mkdir()
        write_nlu([examples[i] for i in train_idx], fold_dir / "train.yml", lookups)
        model, _ = train(config, fold_dir / "train.yml", fold_dir)
        agent, _ = load(model)
        held_out = [examples[i] for i in test_idx]
        predicted = predict(agent, [e.get("text") for e in held_out])
        fold_scores.append(scores([e.get("intent") for e in held_out], predicted))
        print(f"  {config.stem} fold {number + 1}/{folds}: accuracy {fold_scores[-1][0]:.3f}",
              flush=True)
    full_dir = work / f"{config.stem}-full"
    full_dir.mkdir()
    write_nlu(examples, full_dir / "train.yml", lookups)
    model, train_seconds = train(config, full_dir / "train.yml", full_dir)
    agent, load_seconds = load(model)
    result = {
        "config": config.stem,
        "cv_accuracy": statistics.mean(s[0] for s in fold_scores),
        "cv_macro_f1": statistics.mean(s[1] for s in fold_scores),
        "train_seconds": train_seconds,
        "load_seconds": load_seconds,
    }
    result["eval"] = {}
    for name, eval_set in eval_sets.items():
        predicted = predict(agent, [e.text for e in eval_set])
        result["eval"][name] = scores([e.intent for e in eval_set], predicted)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, nargs="*", default=[],
                        help="labelled TSVs to measure each pipeline on")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--configs", nargs="*", type=Path,
                        default=sorted((ROOT / "benchmarks" / "pipelines").glob("*.yml")))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pipeline-comparison.md")
    args = parser.parse_args()

    from rasa.shared.nlu.training_data.loading import load_data

    quiet_rasa_logs()
    settings = get_settings()
    ensure_pipeline(settings.entity_patterns_path, settings.spacy_model_path)
    os.chdir(ROOT)  # the configs name the spaCy pipeline by a path relative to the root
    training = load_data(str(ROOT / "data" / "nlu"))
    examples = list(training.intent_examples)
    eval_sets = {path.stem: read_examples(path) for path in args.eval}
    results = []
    with tempfile.TemporaryDirectory() as work:
        for config in args.configs:
            print(f"{config.stem}: {args.folds}-fold cross-validation and a full training", flush=True)
            results.append(compare(config, examples, training.lookup_tables, eval_sets,
                                   args.folds, Path(work)))

    lines = [
        "# NLU pipeline comparison", "",
        f"Measured {date.today()} on {os.cpu_count()} cores ({platform.machine()}), "
        f"{len(examples)} training examples, {args.folds}-fold stratified cross-validation "
        "(seed 42); the measuring set is never trained on.", "",
        "Produced by `make compare-pipelines` (`.venv/bin/python "
        "benchmarks/compare_pipelines.py --eval " + " ".join(str(p) for p in args.eval) + "`).",
        "", "| pipeline | CV accuracy | CV macro F1 | "
        + " | ".join(f"{name} accuracy | {name} macro F1" for name in eval_sets)
        + " | full training (s) | model load (s) |",
        "|---" * (5 + 2 * len(eval_sets)) + "|",
    ]
    for r in results:
        figures = " | ".join(f"{a:.3f} | {f:.3f}" for a, f in r["eval"].values())
        lines.append(f"| {r['config']} | {r['cv_accuracy']:.3f} | {r['cv_macro_f1']:.3f} | "
                     f"{figures} | {r['train_seconds']:.1f} | {r['load_seconds']:.1f} |")
    lines += ["", "Configurations: `benchmarks/pipelines/*.yml` (the first line of each says what it is).",
              "Training time is the NLU pipeline only (the full `rasa train` adds the dialogue policies)."]
    table = "\n".join(lines) + "\n"
    print(table)
    # Keep the hand-written decision that follows the figures.
    previous = args.out.read_text() if args.out.exists() else ""
    decision = previous[previous.find("\n## Decision"):] if "\n## Decision" in previous else ""
    args.out.write_text(table + decision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
