"""In-process transports: the emulator app mounted directly in an httpx client (no socket).

Emulated timeouts and resets become the httpx exceptions a real network would raise, so the
client's error classing is tested exactly as it runs against a server.
"""

from __future__ import annotations

import asyncio
import threading

import httpx

from migrator.emulator.app import INPROCESS_HEADER, EmulatedReset, EmulatedTimeout


class EmulatorTransport(httpx.ASGITransport):
    """For `httpx.AsyncClient(transport=EmulatorTransport(app))` / `AsyncGraphClient(transport=...)`."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers[INPROCESS_HEADER] = "1"
        try:
            return await super().handle_async_request(request)
        except EmulatedTimeout as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from None
        except EmulatedReset as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None


class SyncEmulatorTransport(httpx.BaseTransport):
    """For the sync `GraphClient`: runs the app on a private event loop in a daemon thread."""

    def __init__(self, app):
        self._inner = EmulatorTransport(app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator", daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        areq = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def go():
            resp = await self._inner.handle_async_request(areq)
            return resp.status_code, resp.headers, await resp.aread()

        status, headers, content = asyncio.run_coroutine_threadsafe(go(), self._loop).result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
