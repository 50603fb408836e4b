"""Decide: conditions in, notifications out (consumers/decide/decider.py, the role).

Which subscriptions a condition reaches (`index`, `regions`), what changed for each
(`rules`, `state`), and the pipeline from candidates to the ledger (`stages/`).
"""
