"""The network stage: a validated Topology becomes a running Mininet network."""
from netbed.network.testbed import SWITCHES, Testbed

__all__ = ["SWITCHES", "Testbed"]
