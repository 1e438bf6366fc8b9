"""The pictures of a run: time-sequence graph and the kernel's congestion state, in the folder and on the page."""
import re
import xml.etree.ElementTree as ET

import pytest
from conftest import netbed

from netbed.experiment import Evidence
from netbed.trace import kernel_tcp

pytestmark = pytest.mark.netbed


def test_a_lossy_transfer_draws_its_retransmissions_from_wire_and_kernel(tmp_path):
    out, page = tmp_path / "lr", tmp_path / "page.html"
    res = netbed("run", "loss-recovery", "--topo", "lan", "--out", str(out), "--html", str(page))
    assert res.returncode == 0, res.stdout + res.stderr
    ev = Evidence.load(out)
    conn = ev.connection("client")
    for name in ("tseq.svg", "cwnd.svg"):
        assert ET.parse(out / name).getroot().tag.endswith("svg"), name
    tseq, cwnd = (out / "tseq.svg").read_text(), (out / "cwnd.svg").read_text()
    # the legend counts what was drawn: the capture's retransmissions, the kernel's retransmissions
    drawn = re.search(r"retransmissions \((\d+)\)", tseq)
    # (data retransmissions only: a retransmitted SYN or FIN carries no bar)
    assert drawn and 0 < int(drawn.group(1)) <= conn.retransmissions["client"], conn.retransmissions
    kernel = ev.retransmits("client")
    assert re.search(rf"retransmission \({len(kernel)}\)", cwnd) and len(kernel) >= conn.retransmissions["client"]
    assert "SACK blocks" in tseq  # the server reported the holes
    html = page.read_text()
    assert html.count('class="rp-figure"') == 2 and "time-sequence graph" in html
    assert len(kernel_tcp.read_probes(out)) > 0
