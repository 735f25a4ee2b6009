"""The simulator's data files (``data/``): point tables, names, point sources, the demo fleet.

They are read once, at import of the modules that use them; a malformed file fails there.
"""
from __future__ import annotations

import csv
import functools
import io
from importlib import resources
from typing import Any, Dict, List

import yaml


def _text(name: str) -> str:
    return (resources.files("sungrow2mqtt.simulator") / "data" / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def load_yaml(name: str) -> Dict[Any, Any]:
    """A YAML mapping from ``data/``."""
    data = yaml.safe_load(_text(name))
    if not isinstance(data, dict):
        raise ValueError(f"simulator data file {name} is not a mapping")
    return data


def load_csv(name: str) -> List[Dict[str, str]]:
    """The rows of a CSV file from ``data/`` as dicts; lines starting with ``#`` are comments."""
    lines = [line for line in _text(name).splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))
