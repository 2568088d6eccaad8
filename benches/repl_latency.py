"""REPL latency on a pseudo-terminal: start-up to the first prompt (no --sim), and the time
from pressing Tab to the completed text appearing (function names, and namespaces from a
simulated cluster's cache after the first fetch). Prints medians in milliseconds.

    repl_latency.py MESHSHIFT RUNS
"""
import os, pty, select, statistics, subprocess, sys, tempfile, time

meshshift, runs = os.path.abspath(sys.argv[1]), int(sys.argv[2])
PROMPT = b"meshshift> "


def spawn(args, cwd):
    master, slave = pty.openpty()
    env = dict(os.environ, NO_COLOR="1", TERM="xterm")
    process = subprocess.Popen([meshshift, *args], stdin=slave, stdout=slave, stderr=slave,
                               cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    return process, master


def read_until(master, needle, seen, timeout=30.0):
    deadline = time.perf_counter() + timeout
    while needle not in seen:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise SystemExit(f"timed out waiting for {needle!r}; got {seen[-300:]!r}")
        ready, _, _ = select.select([master], [], [], left)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return seen


def drain(master, quiet=0.15):
    """Reads until nothing has come for `quiet` seconds (echo, hints, redraws)."""
    while select.select([master], [], [], quiet)[0]:
        try:
            os.read(master, 65536)
        except OSError:
            return


def stop(process, master):
    os.write(master, b"\x04")
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    os.close(master)


def tab_latency(master, typed, expected):
    """Types `typed`, presses Tab, returns ms until `expected` shows; then clears the line."""
    os.write(master, typed)
    drain(master)
    started = time.perf_counter()
    os.write(master, b"\t")
    read_until(master, expected, b"")
    elapsed = (time.perf_counter() - started) * 1000
    os.write(master, b"\x03")  # Ctrl-C clears the line
    read_until(master, PROMPT, b"")
    return elapsed


with tempfile.TemporaryDirectory() as work:
    startups = []
    for _ in range(runs * 3):
        started = time.perf_counter()
        process, master = spawn(["repl"], work)
        read_until(master, PROMPT, b"")
        startups.append((time.perf_counter() - started) * 1000)
        stop(process, master)

    process, master = spawn(["repl", "--sim"], work)
    read_until(master, PROMPT, b"", timeout=60)
    functions = [tab_latency(master, b"split_ch", b"split_check") for _ in range(runs * 3)]
    os.write(master, b'let c = cluster("sim-source")\r')
    read_until(master, PROMPT, b"")
    # The first Tab starts the fetch; later ones answer from the cache.
    os.write(master, b'c.pods("istio-sy\t')
    read_until(master, b"istio-system", b"")
    os.write(master, b"\x03")
    read_until(master, PROMPT, b"")
    namespaces = [tab_latency(master, b'c.pods("istio-sy', b"istio-system") for _ in range(runs * 3)]
    stop(process, master)

print(f"startup_ms={statistics.median(startups):.1f}")
print(f"complete_function_ms={statistics.median(functions):.2f}")
print(f"complete_namespace_ms={statistics.median(namespaces):.2f}")
