"""Running the simulator over real HTTP: embedded (tests, benchmarks, --demo) or stand-alone."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from types import TracebackType

import anyio
import uvicorn
from anyio.abc import TaskGroup

from exporter.simulator.app import create_app
from exporter.simulator.clock import SimClock
from exporter.simulator.config import SimConfig
from exporter.simulator.context import SimContext
from exporter.simulator.faults import Faults
from exporter.simulator.webhooks import WebhookRegistry, WebhookSender
from exporter.simulator.world import World

logger = logging.getLogger(__name__)

SERVER_KEEP_ALIVE_SECONDS = 30


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process that embeds us owns Ctrl+C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RunningSimulator:
    """`async with RunningSimulator(config) as sim:` serves a world at `sim.api_url` until exit.

    Runs uvicorn (and the webhook sender, when `config.webhook_url` is set) as tasks of the
    current event loop; pass `clock=SimClock.manual(t)` to drive time from a test.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: SimClock | None = None,
        world: World | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:
        self.world = world if world is not None else World(config, clock)
        self.config = self.world.config
        self.faults = faults if faults is not None else Faults(self.config.seed)
        self.webhooks = WebhookRegistry(self.config.seed)
        self.app = create_app(self.world, self.faults, self.webhooks)
        self.sender = WebhookSender(self.world, self.webhooks)
        self._host, self._port = host, port
        self._sock = sock  # already bound (the `simulate` command binds it to report errors)
        self._server: _EmbeddedServer | None = None
        self._task_group: TaskGroup | None = None

    @property
    def api_url(self) -> str:
        """The API root to give the exporter (`CIRCLECI_API_URL`); v2 lives under `/v2`."""
        return f"http://{self._host}:{self._port}/api"

    @property
    def token(self) -> str:
        """The token every API request must carry."""
        return self.config.token

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def stats(self) -> dict[str, object]:
        ctx: SimContext = self.app.state.sim
        return ctx.stats()

    async def __aenter__(self) -> RunningSimulator:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and without it every response waits ~40 ms for a delayed ACK (Nagle).
        sock = self._sock
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        self._host, self._port = sock.getsockname()[:2]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the embedding process's logging alone
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # Longer than any client's pool keeps an idle connection (the exporter's: 4 s), so
            # the server never closes one a client is about to reuse.
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
        )
        self._server = _EmbeddedServer(config)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._server.serve, [sock])
        while not self._server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await anyio.sleep(0.005)
        if self.sender.enabled:
            self._task_group.start_soon(self.sender.run)
        logger.info(
            "simulated CircleCI serving %d projects at %s", len(self.world.projects), self.api_url
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._server is not None and self._task_group is not None
        self._server.should_exit = True
        self.sender.stop()
        return await self._task_group.__aexit__(exc_type, exc, traceback)


async def serve(config: SimConfig, sock: socket.socket) -> None:
    """Serve a simulated organisation on a bound socket until cancelled (`simulate`)."""
    async with RunningSimulator(config, sock=sock) as sim:
        # The simulator's own token, not a secret of anyone's: the user needs it to connect.
        logger.info(
            "point the exporter at CIRCLECI_API_URL=%s CIRCLECI_TOKEN=%s", sim.api_url, sim.token
        )
        await anyio.sleep_forever()
