"""Every CLAIM quotes the lecture verbatim and only the lecture; netbed's own words live elsewhere.

A claim is made of pieces joined by "…" (words left out) or ";" (another place in the lecture); each
piece must occur in the lecture as it stands, punctuation and line layout aside. `docs/lecture.txt` is
the lecture, copied into the repository as it was given.
"""
import re
import unicodedata
from pathlib import Path

import pytest

from netbed.experiment import catalog

LECTURE = Path(__file__).resolve().parents[1] / "docs" / "lecture.txt"


def words(text: str) -> str:
    """The text without whitespace and punctuation: what "verbatim, punctuation and line layout aside" compares."""
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def pieces(claim: str) -> list[str]:
    return [p.strip() for p in re.split(r"[…;]", claim) if p.strip()]


def not_in_lecture(claim: str, lecture: str) -> list[str]:
    """The pieces of `claim` that the lecture does not say."""
    said = words(lecture)
    return [p for p in pieces(claim) if words(p) not in said]


@pytest.fixture(scope="module")
def lecture() -> str:
    return LECTURE.read_text(encoding="utf-8")


@pytest.mark.parametrize("exp", catalog(), ids=lambda e: e.name)
def test_every_claim_is_the_lecture_verbatim(exp, lecture):
    assert pieces(exp.claim), f"{exp.name} has an empty CLAIM"
    assert not_in_lecture(exp.claim, lecture) == [], exp.claim


@pytest.mark.parametrize("claim, stray", [
    # netbed's own words inside the quotation (the old close-unread-rst claim)
    ("TCP协议传输数据之所以可靠地原因在于反馈机制 (close() 时接收队列里还有未读数据: 发 RST, 不发 FIN)",
     "TCP协议传输数据之所以可靠地原因在于反馈机制 (close() 时接收队列里还有未读数据: 发 RST, 不发 FIN)"),
    # an omission not marked with "…" (the lecture says “被动关闭”(passive close),这个FIN…)
    ("接收到这个FIN的对端执行“被动关闭”,这个FIN由TCP确认", "接收到这个FIN的对端执行“被动关闭”,这个FIN由TCP确认"),
    # a word changed: the lecture writes SYN_SEND, not SYN_SENT
    ("客户端发送SYN(SEQ=x)报文给服务器端,进入SYN_SENT状态", "客户端发送SYN(SEQ=x)报文给服务器端,进入SYN_SENT状态"),
])
def test_a_claim_with_words_the_lecture_does_not_say_is_caught(claim, stray, lecture):
    assert not_in_lecture(claim, lecture) == [stray]


def test_the_lecture_copy_is_the_lecture():
    text = LECTURE.read_text(encoding="utf-8")
    assert text.startswith("网络编程") and "HTTP/1.0却由服务器执行主动关闭" in text


@pytest.mark.parametrize("exp", catalog(), ids=lambda e: e.name)
def test_netbed_statements_and_forcing_are_not_quoted_as_the_lecture(exp):
    for own in (exp.netbed, exp.forcing):
        assert not own or words(own) not in words(exp.claim)
    # each experiment that forces its outcome says so in its gloss too, next to the verdict
    if exp.forcing:
        assert "Forced:" in exp.gloss or "forced" in exp.gloss.lower(), exp.gloss


def test_every_experiment_of_the_catalog_has_a_sabotage_and_nothing_else_has():
    from sabotage import SABOTAGE

    assert set(SABOTAGE) == {e.name for e in catalog()}
    for name, runs in SABOTAGE.items():
        assert runs and all(keys for _, keys in runs), name
