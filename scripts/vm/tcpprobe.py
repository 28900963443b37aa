#!/usr/bin/env python3
"""New TCP connections through an event, for the VM bench (scripts/vm/loss.sh).

    tcpprobe.py listen PORT
    tcpprobe.py connect HOST PORT EVERY_MS TIMEOUT_MS SLOW_MS LOG

listen: accepts and closes every connection until killed.
connect: starts a non-blocking connect every EVERY_MS (never two at once to catch up after a
stall: the next one is due EVERY_MS after the later of its schedule and now) until SIGINT or
SIGTERM, then waits for the ones in flight. A connect FAILS when it is not established within
TIMEOUT_MS (a lost SYN is retransmitted only after Linux's 1 s initial RTO) or is refused or
reset; it is SLOW when established after more than SLOW_MS. LOG gets one line per connect:
`<wall clock s at start> <ms to established | fail:<reason>>`; stdout gets one summary line
`connects=N failed=F slow=S max_ms=M` (max over the established ones).
"""
import errno
import selectors
import signal
import socket
import sys
import time


def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        c.close()


def connect(host, port, every_ms, timeout_ms, slow_ms, log_path):
    every, timeout = every_ms / 1000.0, timeout_ms / 1000.0
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sel = selectors.DefaultSelector()
    pending = {}  # socket -> (monotonic start, wall start)
    n = failed = slow = 0
    max_ms = 0.0
    log = open(log_path, "w")

    def done(s, outcome):
        nonlocal failed, slow, max_ms
        start, wall = pending.pop(s)
        sel.unregister(s)
        s.close()
        if isinstance(outcome, str):
            failed += 1
            log.write(f"{wall:.3f} fail:{outcome}\n")
        else:
            ms = outcome * 1000
            max_ms = max(max_ms, ms)
            slow += ms > slow_ms
            log.write(f"{wall:.3f} {ms:.1f}\n")

    due = time.monotonic()
    while not stop or pending:
        now = time.monotonic()
        if not stop and now >= due:
            s = socket.socket()
            s.setblocking(False)
            n += 1
            err = s.connect_ex((host, port))
            pending[s] = (now, time.time())
            sel.register(s, selectors.EVENT_WRITE)
            if err not in (0, errno.EINPROGRESS):
                done(s, errno.errorcode.get(err, str(err)))
            due = max(due + every, now)
        waits = [start + timeout - now for start, _ in pending.values()]
        if not stop:
            waits.append(due - now)
        try:
            events = sel.select(max(0.0, min(waits, default=every)))
        except InterruptedError:
            events = []
        now = time.monotonic()
        for key, _ in events:
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                done(s, errno.errorcode.get(err, str(err)))
            else:
                done(s, now - pending[s][0])
        for s in [s for s, (start, _) in pending.items() if now - start > timeout]:
            done(s, "timeout")
    log.close()
    print(f"connects={n} failed={failed} slow={slow} max_ms={max_ms:.0f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(int(sys.argv[2]))
    else:
        connect(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
                float(sys.argv[6]), sys.argv[7])
