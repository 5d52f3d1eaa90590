"""`aftercare validate`: Rasa's data validation, strict, plus the checks Rasa cannot do.

Rasa's validator warns that a response is "not used in any story or rule" when
only a custom action sends it, or when the Telegram bot sends it itself
(bot.responses.BOT_RESPONSES). This command runs every Rasa check with
warnings as errors, accepts that one warning only for responses the actions or
the bot really send, and checks the other way round too: every response an
action or the bot can send exists in domain.yml. Likewise it accepts "not found
in the NLU training data" only for external intents (EXTERNAL_...), which the
bot triggers and patients never type.
"""
from __future__ import annotations

import argparse
import re
import warnings

from aftercare.protocol import ProtocolError, load_protocol
from aftercare.settings import PROJECT_ROOT, get_settings
from cli.main import CommandError

_UNUSED = re.compile(r"The utterance '(?P<name>[^']+)' is not used in any story or rule")
_NO_EXAMPLES = re.compile(
    r"The intent '(?P<name>[^']+)' is listed in the domain file, but is not found in the NLU "
    r"training data")
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"  # Rasa's convention for intents sent by trigger_intent
# Intents only a button sends (a payload such as "/confirm_warning_signs"): no examples.
BUTTON_ONLY_INTENTS = frozenset({"confirm_warning_signs"})


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
    from bot.responses import BOT_RESPONSES

    try:
        protocol = load_protocol(get_settings().protocol_path)
    except ProtocolError as exc:
        raise CommandError(str(exc)) from None
    sent_by_actions = responses_sent_by_actions(protocol)
    sent_by_bot = set(BOT_RESPONSES)
    ok, messages, domain_responses = _rasa_warnings()
    problems = [] if ok else ["Rasa's validator found errors (see above)"]
    for message in messages:
        unused = _UNUSED.search(message)
        if unused and unused.group("name") in sent_by_actions | sent_by_bot:
            continue
        no_examples = _NO_EXAMPLES.search(message)
        if no_examples and (no_examples.group("name").startswith(EXTERNAL_INTENT_PREFIX)
                            or no_examples.group("name") in BUTTON_ONLY_INTENTS):
            continue
        problems.append(message.strip())
    problems += [f"an action can send '{name}', but domain.yml has no such response"
                 for name in sorted(sent_by_actions - domain_responses)]
    problems += [f"the Telegram bot sends '{name}' (bot/responses.py), but domain.yml has no "
                 f"such response" for name in sorted(sent_by_bot - domain_responses)]
    for problem in problems:
        print(f"validate: {problem}")
    if problems:
        raise CommandError(f"{len(problems)} problem(s) in the assistant's data")
    print(f"validate: OK ({len(domain_responses)} responses, every Rasa check passed)")
    return 0
