"""Reading the YAML files people edit (the clinic's protocol, the red-flag
signs), with errors that name the file."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Type

import yaml


def read_yaml(path: Path, error: Type[Exception]) -> Any:
    """The file's contents; `error` naming the file when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
