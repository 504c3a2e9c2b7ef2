"""A page opened in a real headless Chromium, for the tests that check what a reader sees.

The browser is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`:
the browser reads JSON commands from its fd 3 and writes replies and events to its fd 4,
each message ended by a NUL byte), so no WebSocket library and no network port are needed.
Only a browser already installed is used (`chromium`, `chromium-browser`, `google-chrome`,
`google-chrome-stable` on PATH, or SCOREFIELD_CHROMIUM); nothing is downloaded."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of an installed Chromium or Chrome, or None."""
    given = os.environ.get("SCOREFIELD_CHROMIUM")
    if given:
        return shutil.which(given)
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """One tab of a headless browser, over the DevTools pipe. Use as a context manager."""

    def __init__(self, binary: str, *, width: int = 1200, height: int = 900, timeout: float = 60.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="scorefield-chromium-")
        to_child_r, self._to_child = os.pipe()  # the browser reads its commands on fd 3
        self._from_child, from_child_w = os.pipe()  # and writes replies and events on fd 4
        # the child's ends above 9, so that moving them onto 3 and 4 cannot overwrite either
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w)]
        os.close(to_child_r)
        os.close(from_child_w)
        to_child_r, from_child_w = high

        # the pipe ends go to fds 3 and 4 in a tiny launcher that then becomes the browser: no
        # preexec_fn, so this multithreaded (JAX) process never forks with Python running in the child
        move = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
        self._log = tempfile.TemporaryFile()  # the browser's own chatter (a pipe could fill and block it)
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-c", move, str(to_child_r), str(from_child_w), binary, "--headless", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-dev-shm-usage", "--mute-audio", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            pass_fds=(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self._inbox: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=True)
            self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for m in messages:
                self._inbox.put(json.loads(m))

    def _get(self, deadline: float) -> dict:
        try:
            msg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("the browser did not answer in time") from None
        if msg is None:
            self._log.seek(0)
            err = self._log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the browser closed its DevTools pipe: {err}")
        return msg

    def call(self, method: str, *, session: bool = False, **params) -> dict:
        """Send one DevTools command and return its result (events met meanwhile are kept)."""
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = self._session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._get(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        """The first event `method` (of this tab), waiting for it if it has not come yet."""
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + self.timeout
        while True:
            e = self._get(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", session=True, url=Path(path).resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression (a promise is awaited)."""
        r = self.call("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"the page's script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def errors(self) -> list[str]:
        """Every console error, uncaught exception and browser log error seen so far (failed
        resource loads appear as log errors)."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                out.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        return out

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                try:
                    self.call("Browser.close")
                except (RuntimeError, TimeoutError, OSError):
                    pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Page":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
