"""Offline replay of a recorded episode: serves each source URL path as it was at scenario time.

`create_replay_app(scenario, clock)` is an aiohttp app for 127.0.0.1 that answers the paths
capmon's producers poll (CAISO Today's Outlook, the Flex Alert API, OASIS, SCE's DR event
service) and a mailbox of CAISO notice emails, each with what it held at the injected clock's
current time, as the scenario's `timeline.json` says.
"""

from capmon.replay.server import ReplayServer, create_replay_app, source_urls
from capmon.replay.timeline import Timeline, load_timeline

__all__ = ["ReplayServer", "Timeline", "create_replay_app", "load_timeline", "source_urls"]
