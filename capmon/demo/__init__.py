"""Helpers for `capmon demo`: local sinks and stand-ins that need no producers or consumers."""
