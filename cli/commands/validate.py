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
from pathlib import Path

from aftercare.protocol import ProtocolError, load_protocol
from aftercare.rasa_data import BUTTON_ONLY_INTENTS, EXTERNAL_INTENT_PREFIX, rasa_validation
from aftercare.settings import PROJECT_ROOT, get_settings
from cli.main import CommandError

_UNUSED = re.compile(r"The utterance '(?P<name>[^']+)' is not used in any story or rule")
_NO_EXAMPLES = re.compile(
    r"The intent '(?P<name>[^']+)' is listed in the domain file, but is not found in the NLU "
    r"training data")
DATA_DIR = PROJECT_ROOT / "data"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check the domain, training data, stories and protocol (strict)")
    parser.set_defaults(handler=_validate)


def data_problems(data_dir: Path = DATA_DIR) -> tuple[list[str], int]:
    """Everything `aftercare validate` finds wrong with the assistant's data when
    its training data is data_dir (the export of the authoring inbox checks a
    copy this way before writing), and how many responses the domain has."""
    from actions.answers import responses_sent_by_actions
    from bot.responses import BOT_RESPONSES

    try:
        protocol = load_protocol(get_settings().protocol_path)
    except ProtocolError as exc:
        raise CommandError(str(exc)) from None
    sent_by_actions = responses_sent_by_actions(protocol)
    sent_by_bot = set(BOT_RESPONSES)
    rasa = rasa_validation(data_dir, PROJECT_ROOT / "domain.yml", PROJECT_ROOT / "config.yml")
    domain_responses = rasa.responses
    problems = [] if rasa.ok else ["Rasa's validator found errors (see above)"]
    for message in rasa.warnings:
        unused = _UNUSED.search(message)
        if unused and unused.group("name") in sent_by_actions | sent_by_bot:
            continue
        no_examples = _NO_EXAMPLES.search(message)
        if no_examples and (no_examples.group("name").startswith(EXTERNAL_INTENT_PREFIX)
                            or no_examples.group("name") in BUTTON_ONLY_INTENTS):
            continue
        problems.append(message.strip())
    if rasa.responses:
        problems += [f"an action can send '{name}', but domain.yml has no such response"
                     for name in sorted(sent_by_actions - domain_responses)]
        problems += [f"the Telegram bot sends '{name}' (bot/responses.py), but domain.yml has "
                     f"no such response" for name in sorted(sent_by_bot - domain_responses)]
    return problems, len(domain_responses)


def _validate(args: argparse.Namespace) -> int:
    problems, responses = data_problems()
    for problem in problems:
        print(f"validate: {problem}")
    if problems:
        raise CommandError(f"{len(problems)} problem(s) in the assistant's data")
    print(f"validate: OK ({responses} responses, every Rasa check passed)")
    return 0
