"""`aftercare train` and `aftercare test-stories`: the Rasa model and its test conversations."""
from __future__ import annotations

import argparse
import os
import subprocess
import time

from aftercare.services import MODEL_DIR, MODEL_NAME, VENV_BIN, model_path, service_env
from aftercare.settings import PROJECT_ROOT, get_settings
from cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="build the spaCy pipeline and train the Rasa model if anything changed")
    train.add_argument("--force", action="store_true", help="train even if nothing changed")
    train.set_defaults(handler=_train)

    stories = subparsers.add_parser(
        "test-stories", help="run the test conversations in tests/test_stories.yml")
    stories.set_defaults(handler=_test_stories)


def _rasa(*args: str) -> int:
    env = service_env(get_settings())
    return subprocess.call([str(VENV_BIN / "rasa"), *args], cwd=PROJECT_ROOT, env=env)


def _train(args: argparse.Namespace) -> int:
    from aftercare.language import ensure_pipeline  # spaCy takes seconds to import

    settings = get_settings()
    rebuilt = ensure_pipeline(settings.entity_patterns_path, settings.spacy_model_path)
    if rebuilt:
        print(f"train: built the spaCy pipeline in {settings.spacy_model_path}")
    # Rasa fingerprints the SpacyNLP component by its path only, so a rebuilt
    # pipeline must force a new model.
    force = args.force or rebuilt
    started = time.monotonic()
    status = _rasa("train", "--out", str(MODEL_DIR), "--fixed-model-name", MODEL_NAME,
                   *(["--force"] if force else []))
    if status != 0:
        raise CommandError(f"rasa train failed (exit {status})")
    print(f"train: done in {time.monotonic() - started:.1f} s; model {model_path()}")
    return 0


def _test_stories(args: argparse.Namespace) -> int:
    os.makedirs(PROJECT_ROOT / "results", exist_ok=True)
    # Rasa replays the stories' events and checks each predicted action and
    # intent; the custom actions themselves are tested in tests/test_actions.py.
    status = _rasa("test", "core", "--model", str(model_path()), "--stories", "tests/test_stories.yml",
                   "--fail-on-prediction-errors", "--out", "results")
    if status != 0:
        raise CommandError("test stories failed: see results/failed_test_stories.yml")
    return 0
