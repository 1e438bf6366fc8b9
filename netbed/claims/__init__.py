"""Claim files: a teacher's test of someone's own programs, written as data (TOML).

A claim file names a topology, a server and a client command, and what the network must show
(`[expect]`). netbed runs it exactly like a catalog experiment — the same lab, captures, kernel
state tracing and the same `Expect` assertions — so a claim file and a catalog experiment speak
one vocabulary of expectations. Modules:

    file.py        read and validate a claim file (before any network is built)
    experiment.py  a claim file as an Experiment: run(lab) starts the programs, check() asserts
    programs.py    someone else's programs: run as the folder's owner, watched, stopped
    grade.py       run one claim file or a folder of them; verdict table; JUnit XML
    skeleton.py    a claim-file skeleton of a catalog experiment (`netbed list --claims EXP`)
"""
