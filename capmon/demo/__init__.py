"""`capmon demo`: the replayed scenario's local sinks, stand-ins and clock driver.

The sinks need the `demo` extra (aiosmtpd, rich); this module and the Twilio stand-in do not,
so the command line can name the default scenario without them.
"""

from pathlib import Path

# Installed from a wheel the scenario is package data beside this module; in a checkout it is
# the repository's scenarios/ (pyproject.toml maps one onto the other).
_PACKAGED = Path(__file__).resolve().with_name("scenarios") / "2022-09-heatwave"
DEFAULT_SCENARIO = _PACKAGED if _PACKAGED.is_dir() else (
    Path(__file__).resolve().parents[2] / "scenarios" / "2022-09-heatwave")
