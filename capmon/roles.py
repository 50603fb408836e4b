"""The roles by name, as `capmon run | produce | decide | deliver | api` and the demo start them."""

from __future__ import annotations

from capmon import api
from consumers.decide import decider
from consumers.deliver import deliverer
from monitor.api import ops
from monitor.runtime import RoleFn
from producers import runner

ROLES: dict[str, RoleFn] = {
    "api": api.run,
    "produce": runner.run,
    "decide": decider.run,
    "deliver": deliverer.run,
    # Not a role of its own: `capmon produce|decide|deliver` add it to serve /healthz,
    # /readyz and /metrics (`capmon run` has the api role for that).
    "ops": ops.run,
}
SERVING_ROLES = ("api", "produce", "decide", "deliver")
