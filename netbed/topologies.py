"""Finds the topology scripts in `topologies/` and builds their validated Topology."""
from __future__ import annotations

import importlib
import inspect
from types import ModuleType

from netbed.errors import NetbedError
from netbed.spec import Topology

# CLI name -> module in the `topologies` package (hyphens are not allowed in module names)
TOPOLOGIES = {"lan": "lan", "multi-lan": "multi_lan", "wan": "wan"}


def module(name: str) -> ModuleType:
    if name not in TOPOLOGIES:
        raise NetbedError(f"unknown topology {name!r}: choose one of {', '.join(TOPOLOGIES)}")
    return importlib.import_module(f"topologies.{TOPOLOGIES[name]}")


def build(name: str, **params: object) -> Topology:
    """Build topology `name`; params left as None take the topology's defaults."""
    builder = module(name).build
    accepted = inspect.signature(builder).parameters
    given = {k: v for k, v in params.items() if v is not None}
    for key in given:
        if key not in accepted:
            raise NetbedError(f"topology {name} takes no --{key}")
    return builder(**given)
