"""``suimeet terminal``: run the agent of one room's terminal from the command line.

Also ``python -m rooms.agent`` with the same options, for terminals where only the agent is
installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence

from rooms.agent.agent import TerminalAgent
from rooms.agent.media import MediaSources


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server", required=True, help="the SuiMeet server, e.g. https://meet.gz.gov.cn"
    )
    p.add_argument(
        "--token", default=os.environ.get("SUIMEET_TERMINAL_TOKEN"),
        help="the terminal's token smr_… (default: SUIMEET_TERMINAL_TOKEN)",
    )  # fmt: skip
    p.add_argument(
        "--video", default="testsrc",
        help="camera: /dev/video0, a file or URL, testsrc[:R,G,B] or none (default testsrc)",
    )  # fmt: skip
    p.add_argument(
        "--audio", default="testsrc",
        help="microphone: alsa:hw:0, pulse:default, a file, testsrc or none (default testsrc)",
    )  # fmt: skip
    p.add_argument("--lead", type=float, default=5.0, help="join this many seconds early")
    p.add_argument(
        "--host-address", action="append", dest="host_addresses",
        help="offer this address as ICE host candidate (repeatable; e.g. 127.0.0.1 in tests)",
    )  # fmt: skip
    p.add_argument(
        "--reconnect-max", type=float, default=60.0, help="longest wait between reconnections"
    )


def run(args: argparse.Namespace) -> int:
    if not args.token:
        raise SystemExit("give the terminal's token with --token or SUIMEET_TERMINAL_TOKEN")
    agent = TerminalAgent(
        args.server, args.token, sources=MediaSources(video=args.video, audio=args.audio),
        lead=args.lead, host_addresses=args.host_addresses, reconnect_cap=args.reconnect_max,
    )  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    asyncio.run(main())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suimeet-terminal", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))
