"""netbed: a network-emulation testbed that turns a networking lecture into asserted experiments."""

__version__ = "0.1.0"
