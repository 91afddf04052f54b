"""Shared helpers for the Python benchmarks in bench/ (crash.py, idle.py).

Finds or builds the release binary, hands out free ports, writes gateway
configurations, starts the gateway, smtp-sink and Postfix, and stops every
process it started when the benchmark ends, fails or is interrupted.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
TARGET_DIR = os.environ.get(
    "CARGO_TARGET_DIR", os.path.expanduser("~/.cache/portcullis-target"))
# PORTCULLIS_BIN=path measures that binary as it is. Otherwise the release build is
# brought up to date with the working tree first (a no-op when it is), unless
# NO_BUILD=1 and a binary exists.
BUILD = "PORTCULLIS_BIN" not in os.environ
BINARY = os.environ.get("PORTCULLIS_BIN", os.path.join(TARGET_DIR, "release", "portcullis"))
POSTFIX_RELAY = os.path.join(REPO_DIR, "scripts", "peers", "postfix-relay.sh")

_BUILT_AT = None     # build time of the binary the private copy was made from
_procs = []          # Popen objects to stop at exit
_postfix_dirs = []   # private Postfix instances to stop at exit


def log(msg):
    print(time.strftime("== %H:%M:%S ") + msg, file=sys.stderr, flush=True)


def die(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def cleanup():
    for d in _postfix_dirs:
        subprocess.run([POSTFIX_RELAY, "stop", d], check=False)
    for p in _procs:
        if p.poll() is None:
            p.terminate()
    for p in _procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _on_signal(signum, _frame):
    sys.exit(128 + signum)      # runs atexit handlers


def init(need=("smtp-sink",)):
    """Checks root and peers, builds the binary (see BUILD), installs cleanup.
    Returns a fresh work directory (removed at exit unless KEEP_WORK=1 or failure)."""
    global BINARY, _BUILT_AT
    if os.geteuid() != 0:
        die("run as root (smtp-sink -u root and Postfix's master need it)")
    os.environ["PATH"] += ":/usr/sbin"
    for tool in need:
        if not shutil.which(tool):
            die(f"{tool} is missing; install the peers with scripts/install-peers.sh")
    if BUILD and (os.environ.get("NO_BUILD") != "1" or not os.access(BINARY, os.X_OK)):
        log("building the release binary")
        env = dict(os.environ, CARGO_TARGET_DIR=TARGET_DIR)
        if subprocess.run(["cargo", "build", "--release", "-p", "portcullis"],
                          cwd=REPO_DIR, env=env).returncode != 0:
            die("build failed")
    if not os.access(BINARY, os.X_OK):
        die(f"no binary at {BINARY}")
    work = tempfile.mkdtemp(prefix="portcullis-bench.")
    os.chmod(work, 0o755)
    # Measure a private copy: a rebuild in the shared target directory during the
    # run (or between a kill and the restart) must not change the binary.
    _BUILT_AT = os.path.getmtime(BINARY)
    shutil.copy2(BINARY, os.path.join(work, "portcullis"))
    BINARY = os.path.join(work, "portcullis")
    atexit.register(_remove_work, work)
    atexit.register(cleanup)           # runs before _remove_work
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return work


_failed = [False]


def mark_failed():
    _failed[0] = True


def _remove_work(work):
    if os.environ.get("KEEP_WORK") == "1" or _failed[0] or sys.exc_info()[0]:
        print(f"bench: work files kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


def binary_info():
    """What was measured: the binary's version, checksum and build time, and the commit."""
    import hashlib
    version = subprocess.run([BINARY, "--version"], capture_output=True, text=True).stdout.strip()
    digest = hashlib.sha256(open(BINARY, "rb").read()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                          time.gmtime(_BUILT_AT or os.path.getmtime(BINARY)))
    head = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "-"
    dirty = subprocess.run(["git", "-C", REPO_DIR, "diff", "--quiet", "HEAD", "--", "crates"]).returncode
    return (f"{version}, sha256 {digest}, built {built}, repository at {head}"
            + (" (crates/ modified)" if dirty else ""))


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    die(f"nothing listens on port {port}")


def start(args, log_path, **kw):
    """Starts a process whose output goes to log_path; stopped at exit."""
    out = open(log_path, "ab")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kw)
    _procs.append(p)
    return p


def stop_process(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start_sink(port, log_path, dump_template=None, extra=()):
    """smtp-sink on port; with dump_template every message is written to a file."""
    args = ["smtp-sink", "-u", "root", "-c", *extra]
    if dump_template:
        args += ["-d", dump_template]
    p = start(args + [f"127.0.0.1:{port}", "1024"], log_path)
    wait_port(port)
    return p


def write_config(path, data_dir, smtp, http, sink, smtp_extra="", queue_extra=""):
    """A gateway configuration: example.test delivered to the sink on `sink`."""
    os.makedirs(data_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write(f"""[server]
hostname = "gw.bench.test"
data_dir = "{data_dir}"

[smtp]
listen = ["127.0.0.1:{smtp}"]
trusted_networks = ["127.0.0.0/8"]
{smtp_extra}

[http]
listen = "127.0.0.1:{http}"

[[domains]]
name = "example.test"
deliver_to = "smtp://127.0.0.1:{sink}"

[queue]
delivery_tls = "disabled"
{queue_extra}
""")


class Gateway:
    """One gateway process on a configuration; can be killed and restarted."""

    def __init__(self, config, http, log_path):
        self.config, self.http, self.log_path = config, http, log_path
        self.proc = None

    def start(self, timeout=30.0):
        self.proc = start([BINARY, "serve", "--config", self.config], self.log_path)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                die(f"the gateway exited with {self.proc.returncode}; see {self.log_path}")
            try:
                self.health()
                return
            except OSError:
                time.sleep(0.05)
        die(f"the gateway did not answer /healthz; see {self.log_path}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def health(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz", timeout=5) as r:
            return json.load(r)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=5) as r:
            return r.read().decode()

    def wait_drained(self, timeout):
        """Polls /healthz until the queue is empty; returns the seconds waited."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                if self.health()["queue"]["messages"] == 0:
                    return time.time() - t0
            except OSError:
                pass
            time.sleep(0.2)
        return None

    def pid(self):
        return self.proc.pid


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def start_postfix(dir_, listen, next_hop):
    _postfix_dirs.append(dir_)
    subprocess.run([POSTFIX_RELAY, "start", dir_, str(listen), str(next_hop)], check=True)


def stop_postfix(dir_):
    subprocess.run([POSTFIX_RELAY, "stop", dir_], check=False)
