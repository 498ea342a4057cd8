#!/usr/bin/env python3
"""Terminal timings for bench/inside.sh, on two paths in one run:

  inside.py gpufleet WS_URL TOKEN ROUNDS
      the web terminal: a WebSocket to the server, which relays to the
      agent, which relays to the engine's exec
  inside.py engine SOCKET CONTAINER ROUNDS
      the same exec straight on the engine's socket (create, then start
      with Upgrade: tcp), as `docker exec -it` does

Each round opens a shell, times the first byte, then 20 one-key echoes;
prints one JSON line: {"first_ms": [...], "echo_ms": [...]}.
"""
import asyncio
import json
import socket
import sys
import time

import websockets

KEYS = 20


async def ws_round(url, token):
    t0 = time.perf_counter()
    async with websockets.connect(url, extra_headers=[("Authorization", "Bearer " + token)]) as ws:
        await ws.recv()
        first = (time.perf_counter() - t0) * 1000
        echoes = []
        await asyncio.sleep(0.2)  # the prompt's rest
        try:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=0.05)
        except asyncio.TimeoutError:
            pass
        for _ in range(KEYS):
            t = time.perf_counter()
            await ws.send(b"x")
            got = b""
            while b"x" not in got:
                m = await ws.recv()
                got += m if isinstance(m, bytes) else m.encode()
            echoes.append((time.perf_counter() - t) * 1000)
        await ws.send(b"\x15exit\r")
    return first, echoes


def engine_call(sock_path, method, path, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    out = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    head, body = out.split(b"\r\n\r\n", 1)
    if b"transfer-encoding: chunked" in head.lower():
        plain = b""
        while body:
            size, body = body.split(b"\r\n", 1)
            n = int(size, 16)
            plain, body = plain + body[:n], body[n + 2:]
            if not n:
                break
        body = plain
    return json.loads(body)


def engine_round(sock_path, container):
    t0 = time.perf_counter()
    ex = engine_call(sock_path, "POST", f"/v1.41/containers/{container}/exec",
                     {"AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": True,
                      "Cmd": ["/bin/sh"]})
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    body = b'{"Detach":false,"Tty":true}'
    s.sendall(f"POST /v1.41/exec/{ex['Id']}/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
              f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    rest = got.split(b"\r\n\r\n", 1)[1]
    if not rest:
        rest = s.recv(65536)
    first = (time.perf_counter() - t0) * 1000
    time.sleep(0.2)
    s.setblocking(False)
    try:
        while s.recv(65536):
            pass
    except BlockingIOError:
        pass
    s.setblocking(True)
    echoes = []
    for _ in range(KEYS):
        t = time.perf_counter()
        s.sendall(b"x")
        got = b""
        while b"x" not in got:
            got += s.recv(65536)
        echoes.append((time.perf_counter() - t) * 1000)
    s.sendall(b"\x15exit\r")
    s.close()
    return first, echoes


def main():
    mode, where, what, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    firsts, echoes = [], []
    for _ in range(rounds):
        if mode == "gpufleet":
            f, e = asyncio.run(ws_round(where, what))
        else:
            f, e = engine_round(where, what)
        firsts.append(f)
        echoes.extend(e)
    print(json.dumps({"first_ms": firsts, "echo_ms": echoes}))


main()
