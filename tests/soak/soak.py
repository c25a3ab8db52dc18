#!/usr/bin/python3
"""soak.py -- the workload, faults and bookkeeping of `make soak` (tests/soak/soak.sh).

soak.sh prepares a private PostgreSQL with the demo zone and its history,
the weather server and the ingest configuration, then runs

  soak.py run --dir DIR --bin BIN --seconds N --seed S ...

which starts the daemons (pcf-ingest, two pcf-forecaster daemons,
pcf-publish, pcf-proxy), drives them for N seconds and then drains:

  historian   one file per day of SCADA (from the months after the demo
              day) renamed into the inbox every 1-4 s;
  gateway     the demo day onwards pushed as live ScadaBatch messages, one
              per time stamp; a batch not stored 8 s after it was sent is
              resent with its sequence (the ingest worker skips a batch it
              already committed), as a gateway that must not lose data does;
  triggers    day-ahead and real-time runs requested every 5-20 s, the
              real-time ones three at once (they must coalesce);
  churn       pcf-sub processes behind the proxy that live 2-15 s;
  listener    one long-lived subscriber (`soak.py listen`, a subprocess)
              that checks every topic's sequence, drops a message now and
              then on purpose, and recovers every gap through the snapshot;
  faults      on a schedule drawn from the seed: PostgreSQL restarted, the
              ingest worker and an engine (while it holds a job) killed
              with SIGKILL and restarted a few seconds later;
  memory      every daemon's RSS sampled every 2 s.

After the drain it prints the report (docs/soak.md explains it) and exits
1 on any loss, duplicate, run not done exactly once, or memory growth.
The database is read with psql (no Python driver needed).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import datetime as dt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "deploy"))
sys.path.insert(0, os.path.join(ROOT, "deploy", "python"))

MIB = 1024 * 1024
DEBOUNCE_MS = 2000
REALTIME_GAP_S = 5 * DEBOUNCE_MS // 1000 + 20
stop_workload = threading.Event()
t_zero = time.monotonic()


def log(msg):
    print("%7.1f soak: %s" % (time.monotonic() - t_zero, msg), flush=True)


def q(sql):
    """Rows of a query (lists of strings), or None when the database is down."""
    p = subprocess.run(["psql", "-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    return [line.split("\t") for line in p.stdout.splitlines()]


def q1(sql, default=None):
    r = q(sql)
    return r[0][0] if r else default


def q_retry(sql, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        r = q(sql)
        if r is not None or time.monotonic() > deadline:
            return r
        time.sleep(1)


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---- daemons ---------------------------------------------------------------

class Daemon:
    """One daemon: start, SIGKILL, restart; RSS samples per incarnation."""

    def __init__(self, name, argv, logdir):
        self.name, self.argv, self.logdir = name, argv, logdir
        self.proc = None
        self.incarnation = 0
        self.samples = []            # (time, incarnation, rss bytes)
        self.kills = 0

    def start(self):
        out = open(os.path.join(self.logdir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.incarnation += 1
        log("started %s pid %d" % (self.name, self.proc.pid))

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.kills += 1
        log("killed %s with SIGKILL" % self.name)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def sample(self):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.samples.append((time.monotonic(), self.incarnation, int(line.split()[1]) * 1024))
        except OSError:
            pass


# ---- workload threads --------------------------------------------------------

class Historian(threading.Thread):
    """Drops one historian file per day of SCADA into the inbox."""

    def __init__(self, a, rng):
        super().__init__(daemon=True)
        self.a, self.rng = a, rng
        self.files_sent = self.rows_sent = 0
        self.t_min = self.t_max = None        # of the rows sent, ISO 8601
        month = a.day[:7]
        self.days = {}
        for name in sorted(os.listdir(os.path.join(a.dir, "gen", "scada"))):
            m = name[len("historian_"):-4]
            if m <= month:
                continue
            with open(os.path.join(a.dir, "gen", "scada", name)) as f:
                header = f.readline()
                for line in f:
                    self.days.setdefault(line[:10], []).append(line)
        self.header = header

    def run(self):
        inbox = os.path.join(self.a.dir, "inbox", "scada")
        for day in sorted(self.days):
            if stop_workload.wait(self.rng.uniform(1, 4)):
                return
            rows = self.days[day]
            tmp = os.path.join(inbox, ".soak-%s.tmp" % day)
            with open(tmp, "w") as f:
                f.write(self.header)
                f.writelines(rows)
            os.rename(tmp, os.path.join(inbox, "soak-%s.csv" % day))
            self.files_sent += 1
            self.rows_sent += len(rows)
            ts = sorted(parse_time(r[:r.index(",")]) for r in rows)
            self.t_min = self.t_min or ts[0].isoformat()
            self.t_max = ts[-1].isoformat()


class Gateway(threading.Thread):
    """Pushes the demo day onwards as live ScadaBatch messages; resends what
    the database does not have 8 s after it was sent."""

    RESEND_S = 8

    def __init__(self, a, rng, pb):
        super().__init__(daemon=True)
        self.a, self.rng, self.pb = a, rng, pb
        t0 = parse_time(a.day + "T00:00:00+00:00")
        t1 = parse_time(a.day[:7] + "-28T00:00:00+00:00") + dt.timedelta(days=5)
        t1 = t1.replace(day=1)                        # the first of the next month
        batches = {}
        from replay_scada import QUALITY
        with open(os.path.join(a.dir, "gen", "scada", "historian_%s.csv" % a.day[:7])) as f:
            next(f)
            for line in f:
                ts, point, value, quality = line.rstrip("\n").split(",")
                t = parse_time(ts)
                if t0 <= t < t1:
                    batches.setdefault(t, []).append((point, float(value), QUALITY.get(quality, 1)))
        self.batches = [(int(t.timestamp() * 1000), batches[t]) for t in sorted(batches)]
        self.range = (t0, t1)
        self.seq0 = int(time.time()) * 1000
        self.sent = {}            # seq -> [time_ms, rows, last sent monotonic]
        self.confirmed = set()
        self.resends = 0
        self.rows_sent = 0
        self.lock = threading.Lock()
        self.done_sending = threading.Event()
        self.t_done = None
        import zmq
        self.zmq = zmq
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.setsockopt(zmq.SNDHWM, 100000)
        self.push.connect(a.live)

    def send(self, seq):
        time_ms, rows = self.batches[seq - self.seq0 - 1]
        msg = self.pb.ScadaBatch()
        msg.header.schema_version = 1
        msg.gateway_id = "soak-gateway"
        msg.batch_sequence = seq
        for point, value, quality in rows:
            m = msg.measurements.add()
            m.point_id, m.time_ms, m.value, m.quality = point, time_ms, value, quality
        try:
            self.push.send_multipart([b"pcf.v1.ScadaBatch", msg.SerializeToString()], flags=self.zmq.NOBLOCK)
        except self.zmq.Again:
            pass                                   # counts as sent; the resend will follow
        self.sent[seq] = [time_ms, len(rows), time.monotonic()]

    def check(self):
        """Confirms batches whose every row is stored; resends stale ones."""
        r = q("SELECT (extract(epoch FROM ts) * 1000)::bigint, count(*) FROM measurement"
              " WHERE ts >= '%s' AND ts < '%s' GROUP BY 1" % (self.range[0].isoformat(), self.range[1].isoformat()))
        if r is None:
            return
        stored = {int(t): int(n) for t, n in r}
        now = time.monotonic()
        for seq, (time_ms, rows, last) in list(self.sent.items()):
            if seq in self.confirmed:
                continue
            if stored.get(time_ms, 0) >= rows:
                self.confirmed.add(seq)
            elif now - last > self.RESEND_S:
                self.resends += 1
                self.send(seq)

    def run(self):
        rate = min(20.0, max(1.0, len(self.batches) / (0.85 * self.a.seconds)))
        next_check = time.monotonic() + 3
        for i in range(len(self.batches)):
            if stop_workload.wait(1.0 / rate):
                break
            with self.lock:
                self.send(self.seq0 + i + 1)
                self.rows_sent += len(self.batches[i][1])
            if time.monotonic() > next_check:
                with self.lock:
                    self.check()
                next_check = time.monotonic() + 3
        self.t_done = time.time()
        self.done_sending.set()

    def drain(self, deadline):
        while time.monotonic() < deadline:
            with self.lock:
                self.check()
                if len(self.confirmed) == len(self.sent):
                    return True
            time.sleep(2)
        return False


class Triggers(threading.Thread):
    """Requests day-ahead and real-time runs through `pcf-forecaster queue`."""

    def __init__(self, a, rng):
        super().__init__(daemon=True)
        self.a, self.rng = a, rng
        self.requests = self.errors = self.db_retries = 0
        self.error_lines = []
        self.lock = threading.Lock()

    def queue(self, args):
        """One request; retried while PostgreSQL is restarting, as an
        operator or a scheduler would."""
        for attempt in range(30):
            p = subprocess.run([os.path.join(self.a.bin, "pcf-forecaster"), "queue", "--zone", self.a.zone] + args,
                               capture_output=True, text=True)
            if p.returncode == 0 or not any(w in p.stderr for w in ("connect", "terminat", "shut")):
                break
            self.db_retries += 1
            time.sleep(1)
        with self.lock:
            self.requests += 1
            if p.returncode != 0:
                self.errors += 1
                self.error_lines.append(p.stderr.strip())

    def run(self):
        day = dt.date.fromisoformat(self.a.day)
        while not stop_workload.wait(self.rng.uniform(5, 20)):
            if self.rng.random() < 0.4:
                d = day + dt.timedelta(days=self.rng.randint(-3, 3))
                self.queue(["--day-ahead", d.isoformat()])
            else:
                # three at once: concurrent requests must coalesce into one job
                ts = [threading.Thread(target=self.queue, args=(["--real-time"],)) for _ in range(3)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()


class Churn(threading.Thread):
    """Subscribers behind the proxy that come and go."""

    def __init__(self, a, rng):
        super().__init__(daemon=True)
        self.a, self.rng = a, rng
        self.started = self.finished = self.malformed = self.failed = self.delivered = 0
        self.live = []

    def reap(self, force=False):
        for item in list(self.live):
            p, until, errpath = item
            if force or time.monotonic() >= until:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                self.live.remove(item)
                self.finished += 1
                with open(errpath) as f:
                    tail = [ln for ln in f if " delivered, " in ln]
                os.unlink(errpath)
                if p.returncode not in (0, -signal.SIGTERM):
                    self.failed += 1
                if tail:
                    w = tail[-1].split()
                    self.delivered += int(w[1])
                    self.malformed += int(w[w.index("malformed") - 1]) if "malformed" in w else 0
                else:
                    self.failed += 1

    def run(self):
        prefixes = [["pcf."], ["cs.", "cb."], [""], ["pcf.rt."], ["pcf.da.", "cs."]]
        while not stop_workload.wait(self.rng.uniform(1, 4)):
            self.reap()
            if len(self.live) >= 3:
                continue
            errpath = os.path.join(self.a.dir, "churn-%d.err" % self.started)
            with open(errpath, "w") as err:
                p = subprocess.Popen([os.path.join(self.a.bin, "pcf-sub"), "--pub", self.a.xpub, "--router",
                                      self.a.router, "--format", "csv"] + self.rng.choice(prefixes),
                                     stdout=subprocess.DEVNULL, stderr=err)
            self.live.append((p, time.monotonic() + self.rng.uniform(2, 15), errpath))
            self.started += 1
        self.reap(force=True)


# ---- the long-lived subscriber (a subprocess) ------------------------------------

def listen(argv):
    """`soak.py listen`: pcf_client's subscriber, counting what it applies,
    dropping a message now and then on purpose, writing a JSON summary on
    SIGTERM."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--pub", required=True)
    ap.add_argument("--router", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--drop-every", type=int, default=15, help="drop about one message in N")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    import pcf_client
    pb = pcf_client.pcf_pb2
    rng = random.Random(a.seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    class Listener(pcf_client.Client):
        def __init__(self, args):
            super().__init__(args)
            self.live_applied, self.recovered, self.initial = {}, {}, {}
            self.dropped = self.snapshot_failures = self.duplicates = 0
            self.published = {}        # topic -> latest sequence from heartbeats
            self.started = self.dropping = False

        def snapshot(self, prefix, queue):
            before = dict(self.last)
            for attempt in range(5):
                try:
                    super().snapshot(prefix, queue)
                    break
                except SystemExit as e:   # no reply in 10 s: count it and ask again
                    self.snapshot_failures += 1
                    print("SNAPSHOT-RETRY %s" % e, flush=True)
            for topic, seq in self.last.items():
                jump = seq - before.get(topic, 0)
                if jump > 0:
                    book = self.recovered if self.started else self.initial
                    book[topic] = book.get(topic, 0) + jump

        def handle(self, frames):
            if len(frames) == 2 and frames[0] == b"hb":
                hb = pb.Heartbeat.FromString(frames[1])
                for ts in hb.topics:
                    self.published[ts.topic] = max(self.published.get(ts.topic, 0), ts.sequence)
            topic = frames[0].decode("ascii", "replace") if frames else ""
            # The fault: this message never arrived.  A topic's first
            # message too: a topic the snapshot did not hold must start at
            # sequence 1 (protocol section 5), so that loss is a gap as well
            # (the old rule joined at any part 1: seed 2 once lost cb's
            # sequence 1 unnoticed).
            if topic != "hb" and self.dropping and rng.randrange(a.drop_every) == 0:
                self.dropped += 1
                return False
            before = self.last.get(topic, 0)
            applied = super().handle(frames)
            if applied:
                self.live_applied[topic] = self.live_applied.get(topic, 0) + 1
            elif topic != "hb" and self.last.get(topic, 0) == before:
                self.duplicates += 1
            return applied

        def follow(self):
            queue = []
            for p in self.args.prefixes:
                self.snapshot(p, queue)
            for frames in queue:
                self.handle(frames)
            self.started = self.dropping = True
            print("LIVE", flush=True)
            while not stop.is_set():
                if self.sub.poll(100):
                    self.handle(self.sub.recv_multipart())
            # Drain what is in flight, then recover what the last heartbeat
            # says was published after our last message (the protocol's
            # step 5 for a lost final message).
            end = time.monotonic() + 3
            self.dropping = False
            while time.monotonic() < end:
                if self.sub.poll(100):
                    self.handle(self.sub.recv_multipart())
            for topic, seq in self.published.items():
                if seq > self.last.get(topic, 0):
                    self.gaps += 1
                    self.resync(topic)

    args = argparse.Namespace(pub=a.pub, router=a.router, prefixes=["pcf.", "cs.", "cb."], timeout=1e9,
                              count=10**9, curve_server_key=None, curve_key=None)
    li = Listener(args)
    li.follow()
    topics = sorted(set(li.published) | set(li.last))
    summary = {"topics": {t: {"published": li.published.get(t, 0), "held": li.last.get(t, 0),
                              "initial": li.initial.get(t, 0), "live": li.live_applied.get(t, 0),
                              "recovered": li.recovered.get(t, 0)} for t in topics},
               "gaps": li.gaps, "dropped": li.dropped, "snapshot_failures": li.snapshot_failures,
               "duplicates": li.duplicates}
    with open(a.summary, "w") as f:
        json.dump(summary, f, indent=1)
    return 0


# ---- the run -----------------------------------------------------------------

def run(argv):
    ap = argparse.ArgumentParser()
    for opt in ("dir", "bin", "zone", "day", "pub", "router", "xpub", "live", "pgdir", "pgport", "metrics_base"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=300)
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    from replay_scada import load_pb2
    pb = load_pb2(os.path.join(ROOT, "proto"), keep=True)   # the listener imports it too
    b = lambda p: os.path.join(a.bin, p)
    # every daemon its own Prometheus port (the defaults would collide)
    port = lambda i: ["--metrics-port", str(int(a.metrics_base) + i)]
    engine = lambda n, i: Daemon(n, [b("pcf-forecaster"), "daemon", "--zones", a.zone, "--day-ahead-at", "23:59",
                                     "--debounce-ms", str(DEBOUNCE_MS), "--samples", str(a.samples), "--stale-s", "6",
                                     "--name", n] + port(i), a.dir)
    daemons = {
        "pcf-publish": Daemon("pcf-publish", [b("pcf-publish"), "--pub", a.pub, "--router", a.router,
                                              "--heartbeat-ms", "1000"] + port(0), a.dir),
        "pcf-proxy": Daemon("pcf-proxy", [b("pcf-proxy"), "--xpub", a.xpub, "--connect", a.pub], a.dir),
        "pcf-ingest": Daemon("pcf-ingest", [b("pcf-ingest"), "--config", os.path.join(a.dir, "ingest.conf")] + port(1),
                             a.dir),
        "engine-a": engine("engine-a", 2),
        "engine-b": engine("engine-b", 3),
    }
    listener = None
    threads = []
    churn = None
    try:
        for d in daemons.values():
            d.start()
        time.sleep(1)
        summary_path = os.path.join(a.dir, "listener.json")
        with open(os.path.join(a.dir, "listener.log"), "w") as out:
            listener = subprocess.Popen([sys.executable, os.path.abspath(__file__), "listen", "--pub", a.xpub,
                                         "--router", a.router, "--summary", summary_path, "--seed", str(a.seed)],
                                        stdout=out, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, PYTHONPATH=os.path.dirname(pb.__file__)))
        hist = Historian(a, random.Random(rng.random()))
        gw = Gateway(a, random.Random(rng.random()), pb)
        trig = Triggers(a, random.Random(rng.random()))
        churn = Churn(a, random.Random(rng.random()))
        threads = [hist, gw, trig, churn]
        for t in threads:
            t.start()

        # the fault schedule, drawn from the seed
        n = max(1, a.seconds // 300)
        kinds = ["pg"] * n + ["ingest"] * n + ["engine"] * n
        times = sorted(rng.uniform(0.15, 0.8) * a.seconds for _ in kinds)
        rng.shuffle(kinds)
        schedule = list(zip(times, kinds))
        log("fault schedule: " + ", ".join("%s at %.0f s" % (k, t) for t, k in schedule))
        held_by_killed = []
        pg_restarts = 0
        victims = ["engine-a", "engine-b"]
        t_start = time.monotonic()
        window = [time.time() + 10]        # SCADA flows from here (the first files and batches land)
        while time.monotonic() - t_start < a.seconds:
            for d in daemons.values():
                d.sample()
            now = time.monotonic() - t_start
            while schedule and schedule[0][0] <= now:
                _, kind = schedule.pop(0)
                if kind == "pg":
                    log("restarting PostgreSQL")
                    subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "stop", a.pgdir], check=True)
                    time.sleep(rng.uniform(1, 4))
                    subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "start", a.pgdir, a.pgport], check=True)
                    pg_restarts += 1
                elif kind == "ingest":
                    daemons["pcf-ingest"].kill9()
                    time.sleep(rng.uniform(1, 3))
                    daemons["pcf-ingest"].start()
                else:
                    victim = victims[daemons["engine-a"].kills + daemons["engine-b"].kills & 1]
                    held = []
                    for _ in range(40):        # wait (up to 20 s) until it holds a job
                        held = q("SELECT job_id FROM run_queue WHERE status = 'claimed' AND claimed_by = '%s'" % victim)
                        if held:
                            break
                        time.sleep(0.5)
                    daemons[victim].kill9()
                    held_by_killed += [int(r[0]) for r in held or []]
                    log("%s held jobs %s" % (victim, [int(r[0]) for r in held or []]))
                    time.sleep(rng.uniform(1, 3))
                    daemons[victim].start()
            time.sleep(2)
        log("workload over; draining")
        stop_workload.set()
        shutil.rmtree(os.path.dirname(pb.__file__), ignore_errors=True)
        window.append(min(time.time(), gw.t_done or time.time()))
        for t in threads:
            t.join(60)
        deadline = time.monotonic() + max(180, a.seconds // 2)
        live_ok = gw.drain(deadline)
        inbox = os.path.join(a.dir, "inbox", "scada")
        while time.monotonic() < deadline and [f for f in os.listdir(inbox) if f.endswith(".csv")]:
            time.sleep(1)
        # the last SCADA may queue one more real-time run after the debounce
        time.sleep(12)
        while time.monotonic() < deadline and q1("SELECT count(*) FROM run_queue WHERE status IN ('queued', 'claimed')") != "0":
            time.sleep(2)
        for d in daemons.values():
            d.sample()
        listener.terminate()
        listener.wait(60)
        with open(summary_path) as f:
            sub = json.load(f)
        return report(a, daemons, hist, gw, live_ok, trig, churn, sub, pg_restarts, held_by_killed, window)
    finally:
        stop_workload.set()
        if churn:
            churn.reap(force=True)
        if listener and listener.poll() is None:
            listener.kill()
            listener.wait()
        for d in daemons.values():
            d.stop()


def report(a, daemons, hist, gw, live_ok, trig, churn, sub, pg_restarts, held_by_killed, window):
    fails = []

    def check(ok, what):
        if not ok:
            fails.append(what)
        return "ok" if ok else "FAIL"

    print("\n==== soak report: %d s, seed %d, load average %s" % (a.seconds, a.seed, open("/proc/loadavg").read().split(" ")[0:3]))
    # historian
    r = q_retry("SELECT count(*), coalesce(sum(rows_loaded), 0) FROM ingest_batch"
                " WHERE feed = 'scada' AND status = 'loaded' AND source NOT LIKE 'zmq:%' AND source LIKE '%soak-%'")
    files_loaded, rows_loaded = (int(r[0][0]), int(r[0][1])) if r else (-1, -1)
    stored = int(q_retry("SELECT count(*) FROM measurement WHERE ts BETWEEN '%s' AND '%s'"
                         % (hist.t_min, hist.t_max))[0][0]) if hist.t_min else 0
    refused = len([f for f in os.listdir(os.path.join(a.dir, "inbox", "scada", "failed"))
                   if f.startswith("soak-") and f.endswith(".csv")]) \
        if os.path.isdir(os.path.join(a.dir, "inbox", "scada", "failed")) else 0
    print("historian: files sent %d, loaded %d (refused %d); rows sent %d, stored %d, counted in batches %d  %s"
          % (hist.files_sent, files_loaded, refused, hist.rows_sent, stored, rows_loaded,
             check(files_loaded == hist.files_sent and stored == hist.rows_sent == rows_loaded,
                   "historian rows lost or duplicated")))
    # live
    stored = int(q_retry("SELECT count(*) FROM measurement WHERE ts >= '%s' AND ts < '%s'"
                         % (gw.range[0].isoformat(), gw.range[1].isoformat()))[0][0])
    sent_ts = ",".join("'%s'" % dt.datetime.fromtimestamp(v[0] / 1000, dt.timezone.utc).isoformat()
                       for v in gw.sent.values()) or "NULL"
    stored_sent = int(q_retry("SELECT count(*) FROM measurement WHERE ts IN (%s)" % sent_ts)[0][0])
    batches = q_retry("SELECT count(*), count(DISTINCT content_hash) FROM ingest_batch"
                      " WHERE source = 'zmq:soak-gateway' AND status = 'loaded'")[0]
    print("live: batches sent %d (resends %d), loaded %d (distinct %s); rows sent %d, stored %d (in the range %d)  %s"
          % (len(gw.sent), gw.resends, int(batches[0]), batches[1], gw.rows_sent, stored_sent, stored,
             check(live_ok and stored_sent == gw.rows_sent == stored and int(batches[0]) == int(batches[1]) == len(gw.sent),
                   "live rows lost or duplicated")))
    # runs
    jobs = q_retry("SELECT count(*), count(*) FILTER (WHERE attempts >= 1), count(*) FILTER (WHERE status = 'done'),"
                   " count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status IN ('queued', 'claimed')),"
                   " count(DISTINCT run_id), count(*) FILTER (WHERE attempts >= 2 AND status = 'done')"
                   " FROM run_queue")[0]
    requested, started, done, failed, pending, distinct_runs, retaken = (int(x) for x in jobs)
    orphans = int(q_retry("SELECT count(*) FROM run r WHERE kind <> 'trade_check' AND NOT EXISTS"
                          " (SELECT 1 FROM run_queue q WHERE q.run_id = r.run_id)")[0][0])
    unfinished = int(q_retry("SELECT count(*) FROM run WHERE finished_at IS NULL")[0][0])
    kinds = dict((k, int(n)) for k, n in q_retry("SELECT kind, count(*) FROM run_queue GROUP BY 1"))
    print("runs: requested %d (%s; %d queue commands, %d failed, %d retried while the database was down), started %d, completed %d, failed %d, pending %d;"
          " distinct runs %d, runs without a job %d, unfinished %d  %s"
          % (requested, ", ".join("%s %d" % kv for kv in sorted(kinds.items())), trig.requests, trig.errors, trig.db_retries,
             started, done, failed, pending, distinct_runs, orphans, unfinished,
             check(requested == started == done == distinct_runs and failed == pending == orphans == unfinished == 0
                   and trig.errors == 0, "a run not done exactly once")))
    for line in trig.error_lines[:5]:
        print("  queue error: " + line)
    # While the live feed sends, SCADA NOTIFYs come several times a second,
    # so the engines must keep queuing real-time runs themselves: at most
    # RUNQ_DEBOUNCE_MAX_FACTOR (5) x --debounce-ms after the first NOTIFY,
    # plus a restart's reconnection.  Their logs say when they did, and
    # whether a request failed (concurrent requests of both engines race).
    queued, queue_errors = [], 0
    for name in ("engine-a", "engine-b"):
        with open(os.path.join(a.dir, name + ".log"), errors="replace") as f:
            for line in f:       # logfmt (common/log.h): ts=... level=... msg=queued ...
                if re.search(r'\bmsg="?queued"?(\s|$)', line) and "kind=real_time" in line:
                    queued.append(parse_time(line.split()[0].split("=", 1)[-1]).timestamp())
                elif 'msg="queue run"' in line:
                    queue_errors += 1
    marks = sorted([t for t in queued if window[0] <= t <= window[1]] + window)
    gap = max(t1 - t0 for t0, t1 in zip(marks, marks[1:]))
    print("real-time runs the engines queued while the live feed sent: %d, longest wait %.0f s (limit %d s),"
          " failed requests %d  %s" % (len(marks) - 2, gap, REALTIME_GAP_S, queue_errors,
                                       check(gap <= REALTIME_GAP_S and queue_errors == 0,
                                             "real-time runs starved or engine requests failed")))
    kills = daemons["engine-a"].kills + daemons["engine-b"].kills
    taken = int(q_retry("SELECT count(*) FROM run_queue WHERE status = 'done' AND attempts >= 2 AND job_id = ANY"
                        " ('{%s}'::bigint[])" % ",".join(map(str, held_by_killed)))[0][0])
    print("engines: killed %d times holding jobs %s; taken over and done %d (all jobs done after 2+ attempts: %d)  %s"
          % (kills, held_by_killed, taken, retaken, check(taken == len(held_by_killed), "a killed engine's job not taken over")))
    print("faults: PostgreSQL restarted %d, ingest killed %d, engines killed %d"
          % (pg_restarts, daemons["pcf-ingest"].kills, kills))
    # subscribers
    t = sub["topics"]
    pub = sum(v["published"] for v in t.values())
    held = sum(v["held"] for v in t.values())
    bad_topics = [k for k, v in t.items() if v["held"] != v["published"]
                  or v["initial"] + v["live"] + v["recovered"] != v["held"]]
    print("long-lived subscriber: %d topics, messages published %d, held at the end %d (before start %d, received live"
          " %d, recovered by snapshot %d); dropped on purpose %d, gaps %d, duplicates dropped %d, snapshot retries %d  %s"
          % (len(t), pub, held, sum(v["initial"] for v in t.values()), sum(v["live"] for v in t.values()),
             sum(v["recovered"] for v in t.values()), sub["dropped"], sub["gaps"], sub["duplicates"],
             sub["snapshot_failures"], check(not bad_topics and pub > 0, "subscriber lost messages: %s" % bad_topics)))
    print("churn subscribers: started %d, finished %d, failed %d, messages delivered %d, bad messages %d  %s"
          % (churn.started, churn.finished, churn.failed, churn.delivered, churn.malformed,
             check(churn.failed == 0 and churn.malformed == 0 and churn.started > 0, "churn subscriber failed")))
    # memory
    span = a.seconds
    for name, d in daemons.items():
        s = d.samples
        if not s:
            print("memory %-12s no samples  FAIL" % name)
            fails.append("no RSS of " + name)
            continue
        t0, t1 = s[0][0], s[-1][0]
        first = [r for (tt, inc, r) in s if inc == s[0][1] and tt <= t0 + span * 0.25] or [s[0][2]]
        last = [r for (tt, inc, r) in s if inc == s[-1][1] and tt >= t1 - span * 0.25] or [s[-1][2]]
        start, end = max(first), max(last)
        print("memory %-12s RSS start %6.1f MiB, end %6.1f MiB, incarnations %d  %s"
              % (name, start / MIB, end / MIB, d.incarnation,
                 check(end <= 1.25 * start + 8 * MIB, "%s memory grew" % name)))
    print("==== soak %s%s" % ("PASSED" if not fails else "FAILED: ", "; ".join(fails)))
    return 0 if not fails else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "listen":
        sys.exit(listen(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2:]))
    sys.exit("usage: soak.py run|listen OPTIONS (see tests/soak/soak.sh)")
