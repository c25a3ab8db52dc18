#!/usr/bin/python3
"""replay_scada.py -- a SCADA gateway for demos and soak tests.

Reads historian CSV (timestamp,point_id,value,quality) and pushes the rows
between --from and --to (UTC or with offset, ISO 8601) to an ingest worker's
PULL socket as pcf.v1.ScadaBatch messages, one batch per time stamp, framed
[b"pcf.v1.ScadaBatch", payload] as docs/protocol.md section 9 specifies.
The Python classes are generated from proto/pcf.proto by protoc at run time,
so the gateway proves the wire format from a second implementation.

  replay_scada.py --endpoint tcp://127.0.0.1:5558 --from 2025-06-07T00:00+01:00 \
      --to 2025-06-07T12:00+01:00 [--rate 20] FILE.csv...

Uses Debian's python3-zmq and python3-protobuf only.
"""
import argparse
import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time

QUALITY = {"good": 1, "uncertain": 2, "suspect": 2, "bad": 3, "substituted": 4}


def load_pb2(proto_dir, keep=False):
    """Generates pcf_pb2 from the .proto and imports it.  The directory is
    removed once imported unless keep is set (a caller that hands it to a
    subprocess through PYTHONPATH removes it itself)."""
    out = tempfile.mkdtemp(prefix="pcf-pb2-")
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out,
                    os.path.join(proto_dir, "pcf.proto")], check=True)
    sys.path.insert(0, out)
    try:
        import pcf_pb2  # noqa: E402  (generated just now)
    finally:
        # the module lives in memory once imported; the directory would
        # otherwise pile up in /tmp, one per demo run
        if not keep:
            sys.path.remove(out)
            shutil.rmtree(out, ignore_errors=True)
    return pcf_pb2


def parse_time(s):
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("time without offset: " + s)
    return t


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--from", dest="t0", required=True)
    ap.add_argument("--to", dest="t1", required=True)
    ap.add_argument("--rate", type=float, default=20.0, help="batches per second (default 20)")
    ap.add_argument("--gateway", default="demo-gateway")
    ap.add_argument("--proto-dir", default=os.path.join(os.path.dirname(__file__), "..", "proto"))
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    import zmq
    pb = load_pb2(a.proto_dir)
    t0, t1 = parse_time(a.t0), parse_time(a.t1)

    batches = {}
    for path in a.files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    t = parse_time(row["timestamp"])
                    v = float(row["value"])
                except (ValueError, KeyError):
                    continue            # the historian path quarantines these; a gateway skips them
                if t0 <= t < t1:
                    batches.setdefault(t, []).append((row["point_id"], v, QUALITY.get(row["quality"], 1)))

    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(a.endpoint)
    seq = int(time.time())              # kept increasing across runs, as a real gateway's
    sent = rows = 0
    for t in sorted(batches):
        msg = pb.ScadaBatch()
        msg.header.schema_version = 1
        msg.gateway_id = a.gateway
        seq += 1
        msg.batch_sequence = seq
        ms = int(t.timestamp() * 1000)
        for point, value, quality in batches[t]:
            m = msg.measurements.add()
            m.point_id, m.time_ms, m.value, m.quality = point, ms, value, quality
        push.send_multipart([b"pcf.v1.ScadaBatch", msg.SerializeToString()])
        sent += 1
        rows += len(batches[t])
        time.sleep(1.0 / a.rate)
    push.close()
    ctx.term()
    print("replay_scada: %d batches, %d measurements pushed to %s" % (sent, rows, a.endpoint))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
