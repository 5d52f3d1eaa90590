"""`aftercare validate`: Rasa's data validation, strict, plus the checks Rasa cannot do.

Rasa's validator warns that a response is "not used in any story or rule" when
only a custom action sends it. This command runs every Rasa check with
warnings as errors, accepts that one warning only for responses the actions
really send, and checks the other way round too: every response an action
can send exists in domain.yml.
"""
from __future__ import annotations

import argparse
import re
import warnings

from aftercare.cli import CommandError
from aftercare.protocol import ProtocolError, load_protocol
from aftercare.settings import PROJECT_ROOT, get_settings

_UNUSED = re.compile(r"The utterance '(?P<name>[^']+)' is not used in any story or rule")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check the domain, training data, stories and protocol (strict)")
    parser.set_defaults(handler=_validate)


def _rasa_warnings() -> tuple[bool, list[str], set[str]]:
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_config(
        config_path=str(PROJECT_ROOT / "config.yml"),
        domain_path=str(PROJECT_ROOT / "domain.yml"),
        training_data_paths=[str(PROJECT_ROOT / "data")])
    from rasa.cli.utils import _validate_domain, _validate_story_structure

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validator = Validator.from_importer(importer)
        # The same checks as `rasa data validate`; NLU warnings are judged below.
        ok = all([
            _validate_domain(validator),
            validator.verify_nlu(ignore_warnings=True),
            _validate_story_structure(validator, None, fail_on_warnings=True),
        ])
    messages = [str(w.message) for w in caught
                if issubclass(w.category, UserWarning) and not _expected_by_rasa(w)]
    return ok, messages, set(validator.domain.responses)


def _expected_by_rasa(warning: warnings.WarningMessage) -> bool:
    """Warnings Rasa itself filters out in its own commands."""
    from rasa.utils.common import EXPECTED_WARNINGS

    return any(issubclass(warning.category, category) and re.match(pattern, str(warning.message))
               for category, pattern in EXPECTED_WARNINGS)


def _validate(args: argparse.Namespace) -> int:
    from actions.answers import responses_sent_by_actions

    try:
        protocol = load_protocol(get_settings().protocol_path)
    except ProtocolError as exc:
        raise CommandError(str(exc)) from None
    sent_by_actions = responses_sent_by_actions(protocol)
    ok, messages, domain_responses = _rasa_warnings()
    problems = [] if ok else ["Rasa's validator found errors (see above)"]
    for message in messages:
        unused = _UNUSED.search(message)
        if unused and unused.group("name") in sent_by_actions:
            continue
        problems.append(message.strip())
    problems += [f"an action can send '{name}', but domain.yml has no such response"
                 for name in sorted(sent_by_actions - domain_responses)]
    for problem in problems:
        print(f"validate: {problem}")
    if problems:
        raise CommandError(f"{len(problems)} problem(s) in the assistant's data")
    print(f"validate: OK ({len(domain_responses)} responses, every Rasa check passed)")
    return 0
