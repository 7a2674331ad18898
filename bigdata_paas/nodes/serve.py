"""Serve a node's own configuration on each of its check ports (stdlib only).

The process driver's stand-in for the paas-node image's entry point: it answers the same way
(an HTTP request gets an HTTP/1.0 answer, anything else, or nothing within a second, the
node's JSON line). It binds to PAAS_NODE_ADDRESS (127.0.0.1 when the node has none) on every
port of PAAS_NODE_PORTS and serves PAAS_NODE_FILE. The driver copies this file next to the
node's config and runs it with ``python3 -I``; it imports nothing of the platform.
"""

import os
import signal
import socket
import socketserver
import sys
import threading

HTTP_METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}


def make_handler(body: bytes) -> type:
    class Answer(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn = self.request
            conn.settimeout(1.0)
            data = b""
            try:
                while len(data) < 16384:
                    chunk = conn.recv(4096)
                    if not chunk:
                        if not data:
                            return  # the peer left (a health check): nothing to answer
                        break
                    data += chunk
                    if data.split(b" ", 1)[0] in HTTP_METHODS:
                        if b"\r\n\r\n" in data or b"\n\n" in data:
                            break
                    elif b"\n" in data:
                        break
            except OSError:
                pass  # nothing (more) within a second: answer what we have
            method = data.split(b" ", 1)[0]
            payload = body
            if method in HTTP_METHODS:
                head = (
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                payload = head if method == b"HEAD" else head + body
            try:
                conn.sendall(payload)
            except OSError:
                pass

    return Answer


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> int:
    with open(os.environ["PAAS_NODE_FILE"], "rb") as f:
        body = f.read()
    address = os.environ.get("PAAS_NODE_ADDRESS") or "127.0.0.1"
    ports = [int(p) for p in os.environ.get("PAAS_NODE_PORTS", "").split(",") if p.strip()]
    threading.stack_size(256 * 1024)  # many connections under the node's address-space limit
    Server.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
    servers = []
    for port in ports:
        try:
            servers.append(Server((address, port), make_handler(body)))
        except OSError as exc:
            print(f"cannot listen on {address}:{port}: {exc.strerror or exc}", flush=True)
            return 1
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(
        f"node {os.environ.get('PAAS_NODE_NAME')} serving {os.environ['PAAS_NODE_FILE']} "
        f"on {address}:{','.join(map(str, ports)) or 'no port'}",
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(1.0):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
