"""The import arrows point one way: cli -> service -> components -> {isolarcloud, catalog,
discovery, mqtt}.  A lower layer that imported a higher one would tie the library parts to the
bridge (the isolarcloud client is meant to be usable on its own)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import List, Tuple

import sungrow2mqtt

PACKAGE = Path(sungrow2mqtt.__file__).parent
# the layer of each top-level module or package; 0 is the top
LAYERS = {"cli": 0, "addon": 0, "demo": 0, "__main__": 0,
          "service": 1,
          "components": 2, "control": 2, "history": 2,
          "isolarcloud": 3, "catalog": 3, "discovery": 3, "mqtt": 3}


def upward_imports() -> List[Tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if here not in LAYERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("sungrow2mqtt."):
                target = node.module.split(".")[1]
                if LAYERS.get(target, LAYERS[here]) < LAYERS[here]:
                    found.append((str(path.relative_to(PACKAGE)), node.module))
    return found


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "sungrow2mqtt"
    (fake / "isolarcloud").mkdir(parents=True)
    (fake / "isolarcloud" / "client.py").write_text(
        "from sungrow2mqtt.components.fleet import FleetState\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert upward_imports() == [("isolarcloud/client.py", "sungrow2mqtt.components.fleet")]
