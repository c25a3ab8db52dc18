#!/usr/bin/python3
"""pcf_client.py -- example client of the curtailment forecaster's feeds.

Written from docs/protocol.md alone, with Debian's python3-zmq and
python3-protobuf; the message classes come from the same proto/pcf.proto:

    protoc --proto_path=proto --python_out=DIR proto/pcf.proto
    PYTHONPATH=DIR /usr/bin/python3 deploy/python/pcf_client.py [options] PREFIX...

It follows section 5 of the protocol: subscribe first, then ask for a
snapshot per prefix while queueing live messages, apply the snapshot
(reassembling multi-part runs), replay the queue dropping what the snapshot
held, then go live checking every sequence; a gap or a new stream epoch
triggers a resync of that topic (epochs are kept per topic: behind
pcf-proxy topics of several publishers arrive interleaved).  A topic the snapshot did not hold starts
at sequence 1 like any other, so a lost first message is a gap too.  A
topic that a resync finds no state for (an "orphan": behind pcf-proxy the
snapshot socket is one publisher's) starts again at the next message with
part 1 instead of resyncing on every message.  Output, one line per event:

    SNAPSHOT <topic> run <run_id> rows <n> seq <sequence>
    LIVE
    <topic> run <run_id> seq <sequence> part <p>/<count> rows <n> <first row id> sp <first row sp>
    GAP <topic> expected <seq> got <seq>
    DONE messages <n> gaps <n>

With --curve-server-key/--curve-key (Z85 key files written by pcf-keygen)
the sockets are CurveZMQ clients.
"""
import argparse
import sys
import time

import zmq

import pcf_pb2

FEEDS = {"pcf.": pcf_pb2.PcfBatch, "cs.": pcf_pb2.ConstraintStatementBatch, "cb.": pcf_pb2.ConstraintBlockBatch}


def message_class(topic):
    for prefix, cls in FEEDS.items():
        if topic.startswith(prefix):
            return cls
    return None


def rows_of(msg):
    if isinstance(msg, pcf_pb2.PcfBatch):
        return msg.rows, lambda r: r.site_id
    if isinstance(msg, pcf_pb2.ConstraintStatementBatch):
        return msg.statements, lambda r: r.constraint_id
    return msg.blocks, lambda r: r.block_id


def read_key(path, name):
    with open(path) as f:
        for line in f:
            k, sep, v = line.partition("=")
            if sep and k.strip() == name:
                return v.strip().encode()
    raise SystemExit(f"{path}: no {name} line")


class Client:
    def __init__(self, args):
        self.ctx = zmq.Context()
        self.args = args
        self.sub = self.ctx.socket(zmq.SUB)
        self.dealer = None
        self.curve(self.sub)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(args.pub)
        for p in args.prefixes + ["hb"]:
            self.sub.setsockopt(zmq.SUBSCRIBE, p.encode())
        self.last = {}        # topic -> last sequence applied
        self.orphans = set()  # topics a resync found no state for
        self.seen = set()     # topics a feed message arrived on
        self.epochs = {}      # topic -> stream_epoch of its last message
        self.request_id = 0
        self.messages = 0
        self.gaps = 0
        self.new_dealer()

    def curve(self, sock):
        if self.args.curve_server_key:
            sock.curve_serverkey = read_key(self.args.curve_server_key, "public-key")
            sock.curve_publickey = read_key(self.args.curve_key, "public-key")
            sock.curve_secretkey = read_key(self.args.curve_key, "secret-key")

    def new_dealer(self):
        if self.dealer is not None:
            self.dealer.close(0)
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.curve(self.dealer)
        self.dealer.connect(self.args.router)

    def snapshot(self, prefix, queue):
        """Requests the state of prefix; queues feed messages meanwhile."""
        self.request_id += 1
        req = pcf_pb2.SnapshotRequest(topic_prefix=prefix)
        req.header.schema_version = 1
        req.header.request_id = self.request_id
        self.dealer.send_multipart([b"", b"pcf.v1.SnapshotRequest", req.SerializeToString()])
        poller = zmq.Poller()
        poller.register(self.dealer, zmq.POLLIN)
        poller.register(self.sub, zmq.POLLIN)
        deadline = time.monotonic() + min(10.0, self.args.timeout)
        while time.monotonic() < deadline:
            for sock, _ in poller.poll(200):
                if sock is self.sub:
                    queue.append(self.sub.recv_multipart())
                    continue
                frames = self.dealer.recv_multipart()
                if len(frames) != 3 or frames[0] != b"":
                    continue
                if frames[1] == b"pcf.v1.ErrorReply":
                    err = pcf_pb2.ErrorReply.FromString(frames[2])
                    raise SystemExit(f"snapshot refused: {err.reason}")
                reply = pcf_pb2.SnapshotReply.FromString(frames[2])
                if reply.header.request_id != self.request_id:
                    continue                  # a late reply to an earlier request
                held = {ts.topic for ts in reply.topics}
                self.orphans |= {t for t in self.seen if t.startswith(prefix)}
                self.orphans -= held
                for ts in reply.topics:
                    batches = list(ts.pcf) or list(ts.statements) or list(ts.blocks)
                    rows = sum(len(rows_of(b)[0]) for b in batches)
                    run = batches[0].header.run_id if batches else 0
                    assert all(b.header.run_id == run for b in batches), "snapshot mixes runs"
                    assert [b.batch.part for b in batches] == list(range(1, len(batches) + 1))
                    print(f"SNAPSHOT {ts.topic} run {run} rows {rows} seq {ts.sequence}", flush=True)
                    self.last[ts.topic] = ts.sequence
                    if batches:
                        self.epochs[ts.topic] = batches[0].header.stream_epoch
                return
        self.new_dealer()
        raise SystemExit(f"no snapshot reply from {self.args.router}")

    def resync(self, prefix):
        queue = []
        self.snapshot(prefix, queue)
        for frames in queue:
            self.handle(frames)

    def handle(self, frames):
        """Section 5, step 4: returns True when a feed message was applied."""
        if len(frames) != 2:
            return False
        topic = frames[0].decode("ascii", "replace")
        if topic == "hb":
            self.heartbeat_seen = True
            return False
        cls = message_class(topic)
        if cls is None:
            return False
        try:
            msg = cls.FromString(frames[1])
        except Exception:
            return False
        h = msg.header
        if h.schema_version != 1 or h.topic != topic:
            return False
        if self.epochs.get(topic, h.stream_epoch) != h.stream_epoch:
            # the topic's publisher restarted: its sequences start again
            del self.epochs[topic]
            self.last.pop(topic, None)
            self.resync(topic)
            return False
        self.seen.add(topic)
        last = self.last.get(topic, 0)        # 0: not in the snapshot, must start at 1
        if h.sequence <= last:
            return False                      # already held (snapshot or duplicate)
        if h.sequence != last + 1:
            if topic in self.orphans:         # no snapshot holds it: wait for a run's first part
                if msg.batch.part != 1:
                    return False
            else:
                self.gaps += 1
                print(f"GAP {topic} expected {last + 1} got {h.sequence}", flush=True)
                self.resync(topic)
                return False
        self.orphans.discard(topic)
        self.last[topic] = h.sequence
        self.epochs[topic] = h.stream_epoch
        rows, ident = rows_of(msg)
        first = f"{ident(rows[0])} sp {rows[0].sp}" if rows else "- sp -"
        print(f"{topic} run {h.run_id} seq {h.sequence} part {msg.batch.part}/{msg.batch.part_count}"
              f" rows {len(rows)} {first}", flush=True)
        self.messages += 1
        return True

    def run(self):
        self.heartbeat_seen = False
        queue = []
        for p in self.args.prefixes:
            self.snapshot(p, queue)
        for frames in queue:
            self.handle(frames)
        # A heartbeat proves the subscription reached the publisher.
        deadline = time.monotonic() + self.args.timeout
        while not self.heartbeat_seen and time.monotonic() < deadline:
            if self.sub.poll(100):
                self.handle(self.sub.recv_multipart())
        print("LIVE", flush=True)
        while self.messages < self.args.count and time.monotonic() < deadline:
            if self.sub.poll(100):
                self.handle(self.sub.recv_multipart())
        print(f"DONE messages {self.messages} gaps {self.gaps}", flush=True)
        return 0 if self.messages >= self.args.count else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pub", default="tcp://127.0.0.1:5556")
    ap.add_argument("--router", default="tcp://127.0.0.1:5557")
    ap.add_argument("--count", type=int, default=10**9, help="exit after N live feed messages")
    ap.add_argument("--timeout", type=float, default=1e9, help="give up after this many seconds")
    ap.add_argument("--curve-server-key", help="the publisher's .pub key file")
    ap.add_argument("--curve-key", help="this client's .key file")
    ap.add_argument("prefixes", nargs="*", default=[""])
    args = ap.parse_args()
    if bool(args.curve_server_key) != bool(args.curve_key):
        ap.error("--curve-server-key and --curve-key go together")
    return Client(args).run()


if __name__ == "__main__":
    sys.exit(main())
