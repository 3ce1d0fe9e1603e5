"""Load a local HTML file in headless Chromium over the DevTools protocol (stdlib only).

`--remote-debugging-pipe` gives the protocol on file descriptors 3 (we write) and 4 (we
read), NUL-separated JSON: no port, no websocket library. We record every network request
the page makes, console messages, log entries and exceptions, read a value out of the page
and take a PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@dataclass
class PageLoad:
    requests: list[str] = field(default_factory=list)    # every URL the page asked for
    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    exceptions: list[str] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)      # Log.entryAdded (level, text)
    value: object = None
    screenshot: bytes = b""
    probes: dict = field(default_factory=dict)
    print_probes: dict = field(default_factory=dict)
    pdf: bytes = b""

    def errors(self) -> list[str]:
        out = [f"console.{lvl}: {t}" for lvl, t in self.console if lvl in ("error", "assert")]
        out += [f"exception: {e}" for e in self.exceptions]
        out += [f"log.{lvl}: {t}" for lvl, t in self.log if lvl == "error"]
        return out


class _Pipe:
    def __init__(self, proc, wfd: int, rfd: int):
        self.proc, self.w, self.r = proc, wfd, rfd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline: float) -> dict | None:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        mid = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                raise TimeoutError(f"no answer to {method}")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events[i]
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                raise TimeoutError(f"no {method} event")
            self.events.append(msg)
            if msg.get("method") == method:
                return msg

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (msg := self._read_one(deadline)) is not None:
            self.events.append(msg)


def load_page(html_path: Path, *, expression: str = "document.title", width: int = 1280,
              height: int = 900, full_page: bool = True, chromium: str | None = None,
              mobile: bool = False, probes: dict[str, str] | None = None, pdf: bool = False,
              print_probes: dict[str, str] | None = None, media: str | None = None) -> PageLoad:
    """Open `html_path` (file://) in a fresh headless Chromium profile and record what happened.

    `probes`: name -> JS expression, evaluated after load (results in `PageLoad.probes`);
    `pdf`: also print the page to PDF (`PageLoad.pdf`); `print_probes`: expressions evaluated
    with the print media emulated (what the PDF lays out). `mobile` emulates a phone viewport;
    `media` ("print") emulates that media for the whole visit (screenshots included).
    """
    exe = chromium or chromium_path()
    if not exe:
        raise FileNotFoundError("chromium not installed")
    profile = tempfile.mkdtemp(prefix="migrator-chromium-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def _child_fds():
        # the child must see our pipe ends as its fds 3 (reads commands) and 4 (writes
        # answers); dup first so that neither end is clobbered if it already sits on 3 or 4
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    proc = subprocess.Popen(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
         f"--window-size={width},{height}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_child_fds, close_fds=False)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    out = PageLoad()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, session=session)
        if media:
            pipe.call("Emulation.setEmulatedMedia", {"media": media}, session=session)
        pipe.events.clear()
        pipe.call("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
        pipe.wait_event("Page.loadEventFired", timeout=60)
        pipe.drain(0.5)  # late requests or errors after load

        def evaluate(expr: str):
            res = pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
            if "exceptionDetails" in res:
                raise RuntimeError(f"probe failed: {res['exceptionDetails']}")
            return res.get("result", {}).get("value")

        out.value = evaluate(expression)
        out.probes = {name: evaluate(expr) for name, expr in (probes or {}).items()}
        params: dict = {"format": "png"}
        if full_page:
            m = pipe.call("Page.getLayoutMetrics", session=session)
            size = m.get("cssContentSize") or m.get("contentSize")
            params.update({"captureBeyondViewport": True,
                           "clip": {"x": 0, "y": 0, "width": size["width"],
                                    "height": min(size["height"], 16000), "scale": 1}})
        out.screenshot = base64.b64decode(pipe.call("Page.captureScreenshot", params, session=session)["data"])
        if print_probes:
            pipe.call("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
            out.print_probes = {name: evaluate(expr) for name, expr in print_probes.items()}
            pipe.call("Emulation.setEmulatedMedia", {"media": ""}, session=session)
        if pdf:
            out.pdf = base64.b64decode(pipe.call("Page.printToPDF", {"printBackground": True, "paperWidth": 8.27,
                                                                     "paperHeight": 11.69}, session=session,
                                                 timeout=60)["data"])
        for ev in pipe.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
            elif m == "Runtime.consoleAPICalled":
                out.console.append((p.get("type", ""), " ".join(str(a.get("value", a.get("description", "")))
                                                               for a in p.get("args", []))))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif m == "Log.entryAdded":
                e = p.get("entry", {})
                out.log.append((e.get("level", ""), f"{e.get('text', '')} {e.get('url', '')}".strip()))
        try:
            pipe.call("Browser.close", timeout=5)
        except (TimeoutError, RuntimeError):
            pass
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
    return out
