"""From a fault to the notifications: Slack, webhook and email, through a real control plane.

    .venv/bin/python bench/alert_latency.py [--rate 200] [--for 30]

A sandbox project (examples/sandbox.py, blue-green, 2 instances) serves ``--rate`` req/s. At the fault a
release whose instances fail 20 % of requests (FAULT_ERROR_RATE=0.2) takes the traffic (the moment the
blue-green switch finished, from the deploy's own step record). The rule ``error_rate > 5% for 30s``
routes to three receivers: Slack (a local HTTP server behind the url secret), a webhook (Alertmanager
v4 payload, same server) and email (an in-process aiosmtpd server requiring STARTTLS, self-signed
certificate). A second rule with the same expression is silenced (``shipyard silence add``) and must send
nothing. After a quiet spell that checks nothing is repeated inside ``repeat_interval``, a release without
the fault takes over and each receiver must get exactly one resolved notification.

Printed: fault → delivered per receiver (goal: ``for`` + 5 s; limit ``for`` + 10 s), split into fault →
firing (the evaluator, same run) and firing → delivered (the notifier), and the counts.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import platform
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from sandbox import free_port, make_project, wait_for  # noqa: E402
from traffic import Traffic  # noqa: E402

RULES = """
[metrics]
listen = "127.0.0.1:{metrics}"
default_alerts = false

[[alerts]]
name = "HighErrorRate"
env = "staging"
expr = "error_rate > 5%"
for = "{for_}s"
severity = "critical"

[[alerts]]
name = "SilencedErrors"
env = "staging"
expr = "error_rate > 5%"
for = "{for_}s"
severity = "critical"

[notifications]
group_wait = "0s"
group_interval = "10s"
repeat_interval = "4h"
[[notifications.receivers]]
name = "slack"
kind = "slack"
url_secret = "SLACK_WEBHOOK_URL"
[[notifications.receivers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{http}/hook"
[[notifications.receivers]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp}
from = "shipyard@example.com"
to = ["ops@example.com"]
tls_ca_file = "{ca}"
[[notifications.routes]]
match = {{ severity = "critical" }}
match_re = {{ alertname = ".*Error.*" }}
receivers = ["slack", "hook", "mail"]
"""

received: list[tuple[float, str, str, str]] = []  # (time, receiver, status, alertname)
lock = threading.Lock()


def note(receiver: str, status: str, names: list[str]) -> None:
    with lock:
        for n in names:
            received.append((time.time(), receiver, status, n))


def http_server() -> int:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path == "/hook":
                note("hook", body["status"], [a["labels"]["alertname"] for a in body["alerts"]])
            else:  # Slack: the title says [FIRING:n] / [RESOLVED] and the group's labels
                title = body["text"].split("\n", 1)[0]
                note("slack", "resolved" if title.startswith("[RESOLVED") else "firing", [title.split()[1]])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def smtp_server(directory: Path) -> tuple[int, Path, Any]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256()))
    crt, pem = directory / "smtp.crt", directory / "smtp.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, pem)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            subject = str(message_from_bytes(envelope.content, policy=policy.default)["Subject"])
            note("mail", "resolved" if subject.startswith("[RESOLVED") else "firing", [subject.split()[1]])
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True)
    controller.start()
    return port, crt, controller


def switch_time(result: dict[str, Any]) -> float:
    """When the new release took all the traffic: the end of the deploy's last route step."""
    routes = [s for s in result["steps"] if s["name"] == "route"]
    last = routes[-1]
    return float(last["started_at"] + last["duration_s"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--for", dest="for_", type=int, default=30)
    ap.add_argument("--quiet", type=float, default=60.0, help="seconds watched for repeats while firing")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]  # the 1-minute load: other work on the machine competes for the CPU
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-alert-latency-"))
    http = http_server()
    smtp, ca, controller = smtp_server(tmp)
    project = make_project(tmp)
    extra = RULES.format(metrics=free_port(), for_=args.for_, http=http, smtp=smtp, ca=ca)
    project.write_spec(replicas=2, extra=extra)
    project.commit("v1")
    project.ok("secrets", "set", "--env", "staging", f"SLACK_WEBHOOK_URL=http://127.0.0.1:{http}/slack/T0/B0/x")
    project.ok("up", "--detach", timeout=90)
    spec = project.dir / "shipyard.toml"
    try:
        project.ok("deploy", "--env", "staging", timeout=180)
        project.ok("silence", "add", "--match", "alertname=SilencedErrors", "--for", "2h", "-m", "bench: muted")
        with Traffic(project.port, rate=args.rate, connections=8) as traffic:
            time.sleep(15)  # a clean minute of history starts
            spec.write_text(spec.read_text().replace('GREETING = "hello"\n', 'GREETING = "hello"\nFAULT_ERROR_RATE = "0.2"\n'))
            project.commit("v2-faulty")
            res = project.json("deploy", "--env", "staging", timeout=180)
            assert isinstance(res, dict) and res["outcome"] == "succeeded", res
            fault = switch_time(res)
            ok = wait_for(lambda: {r for _, r, s, n in received if s == "firing" and n == "HighErrorRate"}
                          >= {"slack", "hook", "mail"}, timeout=args.for_ + 60, interval=0.1)
            assert ok, received
            time.sleep(args.quiet)
            firing_events = project.json("events", "--env", "staging", "--since", "10m")
            spec.write_text(spec.read_text().replace('FAULT_ERROR_RATE = "0.2"\n', ""))
            project.commit("v3-fixed")
            res3 = project.json("deploy", "--env", "staging", timeout=180)
            assert isinstance(res3, dict) and res3["outcome"] == "succeeded", res3
            recovered = switch_time(res3)
            wait_for(lambda: {r for _, r, s, n in received if s == "resolved"} >= {"slack", "hook", "mail"},
                     timeout=180, interval=0.2)
            time.sleep(25)  # two more group intervals: a second resolved would show here
            counts = traffic.counts
    finally:
        project.cli("down", timeout=120)
        project.kill_everything()
        controller.stop()

    assert isinstance(firing_events, dict)
    def event_at(kind: str) -> float:
        return float(next(e["at"] for e in firing_events["events"]  # type: ignore[index]
                          if e["kind"] == kind and e["data"]["alertname"] == "HighErrorRate" and e["at"] >= fault))

    pending_at, fired_at = event_at("alert_pending"), event_at("alert_firing")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; load average during the run {load_start:.2f} → {os.getloadavg()[0]:.2f}")
    print(f"traffic: {args.rate:g} req/s offered, {counts.summary()}")
    print(f"rule: error_rate > 5% for {args.for_}s; fault = 20% of requests fail; goal for+5 s, limit for+10 s")
    print(f"fault → alert_pending (the 10 s error rate of the router's per-second traffic crosses 5%): "
          f"{pending_at - fault:.1f} s; pending → firing (for): {fired_at - pending_at:.1f} s; "
          f"fault → alert_firing: {fired_at - fault:.1f} s")
    ok = True
    for r in ("slack", "hook", "mail"):
        fire = [t for t, rr, s, n in received if rr == r and s == "firing" and n == "HighErrorRate"]
        resolved = [t for t, rr, s, n in received if rr == r and s == "resolved"]
        lat = fire[0] - fault
        ok &= lat <= args.for_ + 10 and len(fire) == 1 and len(resolved) == 1
        print(f"{r:6s} fault → delivered {lat:5.1f} s (for + {lat - args.for_:4.1f} s; firing → delivered "
              f"{fire[0] - fired_at:4.2f} s); firing notifications {len(fire)}, resolved {len(resolved)} "
              f"(recovery → resolved {resolved[0] - recovered if resolved else float('nan'):.1f} s)")
    silenced = [x for x in received if x[3] == "SilencedErrors"]
    print(f"silenced rule: {len(silenced)} notifications")
    ok &= not silenced
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
