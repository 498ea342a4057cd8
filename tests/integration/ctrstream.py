#!/usr/bin/env python3
"""A real WebSocket client (python3-websockets) for a container's log
follow and web terminal, as the tests drive them.

  ctrstream.py logs URL SECONDS OUT [HEADER...]
      collects messages until the server closes (or SECONDS pass); writes
      {"chunks": [[stream, text]...], "ends": [...], "close": code, "reason"}
  ctrstream.py term URL OUT [HEADER...]
      opens a terminal, reads the first output (timed), runs `echo` round
      trips (timed), resizes and asks `stty size`, types `exit`; writes
      {"first_byte_ms", "echo_ms": [...], "size", "text", "close", "reason"}
  ctrstream.py hold URL SECONDS OUT [HEADER...]
      opens, then waits until the server closes it (or SECONDS pass)
  ctrstream.py events URL SECONDS OUT TYPE [HEADER...]
      the live socket's messages of TYPE, written to OUT (a JSON list) as
      each comes, until SECONDS pass or the server closes
  A refused handshake prints `status N` and exits 3.
"""
import asyncio
import json
import sys
import time

import websockets


def headers_of(args):
    return [tuple(h.split(": ", 1)) for h in args]


async def logs(url, secs, out, hdrs):
    res = {"chunks": [], "ends": [], "close": None, "reason": "", "messages": 0}
    async with websockets.connect(url, extra_headers=hdrs, open_timeout=10, max_size=None) as ws:
        end = time.time() + secs
        try:
            while time.time() < end:
                m = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.time()))
                j = json.loads(m)
                res["messages"] += 1
                if j.get("type") == "logs":
                    res["chunks"].extend(j["chunks"])
                elif j.get("type") == "end":
                    res["ends"].append(j["reason"])
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            pass
        res["close"], res["reason"] = ws.close_code, ws.close_reason
    json.dump(res, open(out, "w"))


async def read_until(ws, needle, secs=10):
    got = b""
    end = time.time() + secs
    while needle not in got:
        m = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.time()))
        got += m if isinstance(m, bytes) else m.encode()
    return got


async def term(url, out, hdrs):
    res = {"echo_ms": [], "text": ""}
    t0 = time.perf_counter()
    async with websockets.connect(url, extra_headers=hdrs, open_timeout=10) as ws:
        first = await asyncio.wait_for(ws.recv(), timeout=10)
        res["first_byte_ms"] = (time.perf_counter() - t0) * 1000
        text = first if isinstance(first, bytes) else first.encode()
        for i in range(20):
            # one key, its echo: what a typist feels
            t = time.perf_counter()
            await ws.send(b"x")
            text += await read_until(ws, b"x")
            res["echo_ms"].append((time.perf_counter() - t) * 1000)
            await ws.send(b"\x7f")  # rub it out again
        await ws.send(b"\x15")  # and the line
        await ws.send(b"echo gf-$((6*7))-ok\r")
        text += await read_until(ws, b"gf-42-ok\r\n")
        await ws.send(json.dumps({"type": "resize", "rows": 33, "cols": 101}))
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"type": "input", "data": "stty size; echo \u00e9t\u00e9-done\r"}))
        text += await read_until(ws, "été-done\r\n".encode())
        # a full-screen program: top draws one screen for the TTY's size
        # (the marker is computed, so the echo of the typed line is not it)
        await ws.send(b"top -n 1; echo top-$((1+1))-done\r")
        text += await read_until(ws, b"top-2-done\r\n")
        # vi, full screen with raw keys: a line typed, ESC, yank and put it
        # (yyp), :wq; the second line read back upper-cased, so only the
        # file (never the echo of what was typed) holds the answer
        await ws.send(b"vi /tmp/v.txt\r")
        text += await read_until(ws, b"/tmp/v.txt", 10)
        await asyncio.sleep(0.3)
        for keys in (b"i", b"vi-wrote-it", b"\x1b", b"yyp", b":wq\r"):
            await ws.send(keys)
            await asyncio.sleep(0.15)
        await ws.send(b"sed -n 2p /tmp/v.txt | tr a-z A-Z; echo vi-$((2+3))-done\r")
        text += await read_until(ws, b"vi-5-done\r\n")
        await ws.send(b"exit\r")
        try:
            while True:
                m = await asyncio.wait_for(ws.recv(), timeout=10)
                text += m if isinstance(m, bytes) else m.encode()
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            pass
        res["close"], res["reason"] = ws.close_code, ws.close_reason
    res["text"] = text.decode("utf-8", "replace")
    json.dump(res, open(out, "w"))


async def hold(url, secs, out, hdrs):
    res = {"close": None, "reason": ""}
    t0 = time.time()
    async with websockets.connect(url, extra_headers=hdrs, open_timeout=10) as ws:
        try:
            while time.time() - t0 < secs:
                await asyncio.wait_for(ws.recv(), timeout=max(0.1, secs - (time.time() - t0)))
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            pass
        res["close"], res["reason"] = ws.close_code, ws.close_reason
    res["after_s"] = time.time() - t0
    json.dump(res, open(out, "w"))


async def events(url, secs, out, kind, hdrs):
    got = []
    json.dump(got, open(out, "w"))
    async with websockets.connect(url, extra_headers=hdrs, open_timeout=10, max_size=None) as ws:
        end = time.time() + secs
        try:
            while time.time() < end:
                m = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.time()))
                j = json.loads(m)
                if j.get("type") == kind:
                    j["at"] = time.time()
                    got.append(j)
                    with open(out + ".tmp", "w") as f:
                        json.dump(got, f)
                    import os
                    os.replace(out + ".tmp", out)
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            pass


def main():
    cmd, url = sys.argv[1], sys.argv[2]
    try:
        if cmd == "logs":
            asyncio.run(logs(url, float(sys.argv[3]), sys.argv[4], headers_of(sys.argv[5:])))
        elif cmd == "events":
            asyncio.run(events(url, float(sys.argv[3]), sys.argv[4], sys.argv[5], headers_of(sys.argv[6:])))
        elif cmd == "term":
            asyncio.run(term(url, sys.argv[3], headers_of(sys.argv[4:])))
        else:
            asyncio.run(hold(url, float(sys.argv[3]), sys.argv[4], headers_of(sys.argv[5:])))
    except websockets.exceptions.InvalidStatusCode as e:
        print("status", e.status_code)
        sys.exit(3)


main()
