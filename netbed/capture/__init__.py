"""The capture stage: tcpdump on the interfaces of interest, written to pcap files."""
from netbed.capture.tcpdump import Capture, capture_all

__all__ = ["Capture", "capture_all"]
