"""Deliver: notifications in, sends out (consumers/deliver/deliverer.py, the role).

The pipeline of one send (`stages`), its claims and verdicts group-committed to the ledger
(`ledger`, `group_commit`), and the limits that protect receivers (`limits`); the channels
themselves are consumers/notifiers/.
"""
