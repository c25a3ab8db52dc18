#!/usr/bin/env python3
"""Tiny HTTP server for the ingest fetch tests (tests/test_ingest_worker.c).

Binds 127.0.0.1 on a free port, prints the port on stdout, then serves:
  /ok/NAME      tests/data/ingest/NAME with 200
  /404          404 with an Open-Meteo style error body
  /500          500 with an Open-Meteo style error body
  /400          400 {"error": true, "reason": "..."}
  /slow         waits 5 s before answering (client timeouts)
  /garbage      200 with a non-JSON body
  /truncated    200 whose body stops early (Content-Length larger than sent)
  /flaky/NAME   503 on the first request, then like /ok/NAME
Stops when stdin closes (the test exits or closes the pipe)."""
import http.server, os, socketserver, sys, threading, time

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)))
seen = set()

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, length=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path
        if p.startswith("/ok/") or p.startswith("/flaky/"):
            name = os.path.basename(p.split("/", 2)[2])
            if p.startswith("/flaky/") and p not in seen:
                seen.add(p)
                return self.send(503, b'{"error": true, "reason": "overloaded"}')
            try:
                with open(os.path.join(DATA, name), "rb") as f:
                    return self.send(200, f.read())
            except OSError:
                return self.send(404, b'{"error": true, "reason": "no such fixture"}')
        if p == "/404":
            return self.send(404, b'{"error": true, "reason": "Not Found"}')
        if p == "/500":
            return self.send(500, b'{"error": true, "reason": "Internal Server Error"}')
        if p == "/400":
            return self.send(400, b'{"error": true, "reason": "Parameter hourly is invalid"}')
        if p == "/slow":
            time.sleep(5)
            return self.send(200, b"{}")
        if p == "/garbage":
            return self.send(200, b"<html>upstream timeout</html>")
        if p == "/truncated":
            return self.send(200, b'{"latitude": 51.5, "hourly": {"time": ["2026', length=5000)
        return self.send(404, b'{"error": true, "reason": "unknown path"}')

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

srv = S(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sys.stdin.read()
srv.shutdown()
