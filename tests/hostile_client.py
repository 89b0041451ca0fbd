"""hostile_client.py - hostile HTTP clients against `grok serve`, for
tests/hostile_serve_test.sh and bench/soak.sh. Every attack runs from its
own loopback addresses (127.0.0.2 and up) while probes come from
127.0.0.1, as an attacker's laptop and other users would; every probe is a
fresh connection.

  hostile_client.py PORT idle N [--addrs K] [--hold S]
      opens N connections (spread over K source addresses) that send
      nothing, holds them S seconds while probing, then reports how many
      the server had closed.
  hostile_client.py PORT slowloris N [--body] [--hold S] [--every S]
      opens N connections that trickle a request one byte every S seconds
      (headers never complete; with --body, headers complete and the body
      trickles), and reports how many the server closed and after how long.
  hostile_client.py PORT soak SECONDS [--workers K]
      K clients for SECONDS doing, at random: whole and streamed
      completions and chats, streams dropped after their first event,
      malformed bodies, idle connections dropped unanswered, /health and
      /metrics; reports the count of each and any unexpected answer.

During the hold (stretched to 20 probes at least), /health is asked every
0.1 s and one completion request runs; the report (one JSON line) gives
the probes' latencies, whether the completion succeeded, and the
connection counts. Exits 1 when a check given by --max-health-ms (90th
percentile) or --need-closed fails.
"""

import argparse
import errno
import json
import resource
import selectors
import socket
import sys
import threading
import time


def exchange(port, req, timeout, read=True, first_only=False):
    """Sends req on a fresh connection from 127.0.0.1 and reads the answer
    to its end (or to its first stream event, or not at all)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(req)
        data = b""
        while read:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if first_only and b"data: " in data:
                break
        return data
    finally:
        s.close()


def probe(port, path="/health", body=None, timeout=10.0):
    """One request on a fresh connection from 127.0.0.1: (status, seconds)."""
    t0 = time.monotonic()
    if body is None:
        req = "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path
    else:
        req = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (path, len(body), body))
    data = exchange(port, req.encode(), timeout)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, time.monotonic() - t0, data


def open_many(port, n, n_addrs, first_addr=2):
    """n non-blocking connections from 127.0.0.first_addr.. (round robin)."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind(("127.0.0.%d" % (first_addr + i % n_addrs), 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno not in (errno.EINPROGRESS, errno.EAGAIN):
                s.close()
                continue
        socks.append(s)
    return socks


def count_closed(socks):
    """Sockets the server has closed (EOF or reset) by now."""
    closed = 0
    for s in socks:
        try:
            d = s.recv(4096, socket.MSG_DONTWAIT)
            if d == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


SOAK_BAD = [
    b'{"prompt":', b'[1,2,3]', b'{"prompt":"x","max_tokens":-1}', b'{"prompt":"\xff\xfe"}',
    b'{"messages":[{"role":"wizard","content":"x"}]}', b'{"prompt":"x","temperature":"hot"}',
    b'{"prompt":"x","n":1000}', b'{"prompt":[999999999]}', b'',
]


def soak(a):
    import random
    counts, errors = {}, []
    lock = threading.Lock()
    t_end = time.monotonic() + a.n

    def note(kind, ok, detail=""):
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
            if not ok and len(errors) < 20:
                errors.append("%s: %s" % (kind, detail))

    def raw(req, read=True, first_only=False):
        return exchange(a.port, req, 60, read, first_only)

    def post(path, body, extra=b""):
        return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def worker(seed):
        rnd = random.Random(seed)
        while time.monotonic() < t_end:
            k = rnd.randrange(9)
            mt = rnd.randint(1, 24)
            try:
                if k == 0:
                    d = raw(post(b"/v1/completions", b'{"prompt":"Once upon a time","max_tokens":%d}' % mt))
                    note("completion", d.startswith(b"HTTP/1.1 200") or b" 503 " in d[:20], d[:80])
                elif k == 1:
                    d = raw(post(b"/v1/completions", b'{"prompt":"Hello","max_tokens":%d,"stream":true}' % mt))
                    note("stream", (d.startswith(b"HTTP/1.1 200") and d.rstrip().endswith(b"0")) or
                         b" 503 " in d[:20], d[-80:])
                elif k == 2:
                    raw(post(b"/v1/completions", b'{"prompt":"Hello","max_tokens":64,"stream":true}'),
                        first_only=True)
                    note("stream_dropped", True)
                elif k == 3:
                    d = raw(post(b"/v1/chat/completions",
                                 b'{"messages":[{"role":"user","content":"Hi"}],"max_tokens":%d,'
                                 b'"stream":%s}' % (mt, b"true" if rnd.random() < 0.5 else b"false")))
                    note("chat", d.startswith(b"HTTP/1.1 200") or b" 503 " in d[:20], d[:80])
                elif k == 4:
                    body = rnd.choice(SOAK_BAD)
                    d = raw(post(b"/v1/completions", body))
                    note("malformed", d.startswith(b"HTTP/1.1 400"), d[:80])
                elif k == 5:
                    d = raw(post(b"/v1/completions", b"x" * 10, b"Content-Length: 99999999999\r\n"))
                    note("malformed", d.startswith(b"HTTP/1.1 400"), d[:80])
                elif k == 6:
                    s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
                    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
                    time.sleep(rnd.random() * 0.5)
                    s.close()
                    note("dropped_unanswered", True)
                elif k == 7:
                    d = raw(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    note("health", d.startswith(b"HTTP/1.1 200"), d[:80])
                else:
                    d = raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    note("metrics", d.startswith(b"HTTP/1.1 200"), d[:80])
            except OSError as e:
                note("socket_error", False, str(e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps({"mode": "soak", "seconds": a.n, "workers": a.workers, "counts": counts,
                      "unexpected": errors}))
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mode", choices=["idle", "slowloris", "soak"])
    ap.add_argument("n", type=int)
    ap.add_argument("--addrs", type=int, default=1)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--body", action="store_true")
    ap.add_argument("--max-health-ms", type=float, default=0)
    ap.add_argument("--need-closed", type=int, default=-1)
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    if a.mode == "soak":
        return soak(a)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.n + 64:
        print(json.dumps({"error": "fd limit %d is below %d connections" % (soft, a.n)}))
        return 1

    t_start = time.monotonic()
    socks = open_many(a.port, a.n, a.addrs)
    t_opened = time.monotonic() - t_start

    stop = threading.Event()
    closed_at = {}
    if a.mode == "slowloris":
        head = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n") if a.body else b"GET /health HTTP/1.1\r\nHost: x\r\nX-a: "

        def trickle():
            sent = {id(s): 0 for s in socks}
            while not stop.is_set():
                for s in socks:
                    k = id(s)
                    if k in closed_at:
                        continue
                    n = sent[k]
                    # the headers in one go when the body trickles, else byte by byte
                    chunk = head if (a.body and n == 0) else (head[n:n + 1] if n < len(head) else b"a")
                    try:
                        s.send(chunk, socket.MSG_DONTWAIT)
                        sent[k] = n + len(chunk)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[k] = time.monotonic() - t_start
                stop.wait(a.every)

        tr = threading.Thread(target=trickle, daemon=True)
        tr.start()

    health, fails = [], 0
    comp = {}

    def completion():
        try:
            st, dt, data = probe(a.port, "/v1/completions", '{"prompt":"Hello","max_tokens":4,"seed":1}', 60)
            comp.update(status=st, seconds=round(dt, 3), ok=st == 200 and b'"text_completion"' in data)
        except OSError as e:
            comp.update(status=0, ok=False, error=str(e))

    ct = threading.Thread(target=completion)
    ct.start()
    # at least 20 probes, however slow the server (a sanitizer build), so the
    # 90th percentile is a percentile and not the one slowest probe
    t_end = time.monotonic() + a.hold
    while time.monotonic() < t_end or len(health) + fails < 20:
        try:
            st, dt, _ = probe(a.port, timeout=5)
            if st != 200:
                fails += 1
            health.append(dt)
        except OSError:
            fails += 1
        time.sleep(0.1)
    ct.join()
    stop.set()
    closed = count_closed(socks) if a.mode == "idle" else max(len(closed_at), count_closed(socks))
    # Connections the kernel completed while the server's accept queue was
    # full reach the server only when it retransmits its SYN-ACK (1 s, then
    # 3 s after the flood): give those up to 5 s more to be seen and closed.
    t_wait = time.monotonic()
    while closed < a.need_closed and time.monotonic() - t_wait < 5:
        time.sleep(0.1)
        closed = max(closed, count_closed(socks))
    close_wait = time.monotonic() - t_wait
    for s in socks:
        s.close()
    health.sort()
    pct = lambda q: round(1000 * health[min(len(health) - 1, int(q * len(health)))], 1) if health else None
    rep = {"mode": a.mode, "connections": len(socks), "addresses": a.addrs, "open_seconds": round(t_opened, 2),
           "closed_by_server": closed, "health_probes": len(health), "health_failures": fails,
           "health_ms_median": pct(0.5), "health_ms_p90": pct(0.9), "health_ms_max": pct(1.0),
           "completion": comp, "fd_limit": soft, "closed_wait_s": round(close_wait, 2)}
    if closed_at:
        t = sorted(closed_at.values())
        rep["closed_after_s_median"] = round(t[len(t) // 2], 2)
    print(json.dumps(rep))
    bad = []
    if fails:
        bad.append("%d /health probes failed" % fails)
    if a.max_health_ms and (not health or pct(0.9) > a.max_health_ms):
        bad.append("/health p90 %s ms > %g ms" % (pct(0.9), a.max_health_ms))
    if not comp.get("ok"):
        bad.append("the completion did not succeed: %s" % comp)
    if a.need_closed >= 0 and closed < a.need_closed:
        bad.append("the server closed %d connections, fewer than %d" % (closed, a.need_closed))
    for b in bad:
        print("FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
