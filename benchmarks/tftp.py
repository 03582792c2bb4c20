"""TFTP: pxed against dnsmasq, tftpd-hpa, atftpd, tftpy, py3tftp, PyPXE and fbtftp, in one run.

    .venv/bin/python benchmarks/tftp.py [--quick] [--runs 5] [--only pxed,dnsmasq] [--peer-venv DIR]

Needs root (private network namespaces), curl, atftp (client), and for the
comparisons dnsmasq, in.tftpd (tftpd-hpa) and atftpd; the Python peers come from
PyPI into a venv made for the run (``--peer-venv DIR`` keeps and reuses one).

Set-up, the same for every server: a server namespace and a client namespace
joined by one veth (MTU 1500, like the rack), every server running at once in
the server namespace on its own port, pinned to CPU 1. curl and atftp run on
the server's CPU too (``--client-cpu 0`` moves them): on this VM a lockstep
ping-pong between two CPUs waits on cross-CPU wake-ups, and every server,
dnsmasq included, then makes the same ~15 MB/s at blksize 1468, which measures
the hypervisor, not the server; on one CPU the time is the server's per-block
work plus the client's, the same client for all. The storm and loss clients
run on CPU 0. Scenarios, servers taking turns within each round so that load
from elsewhere on the machine hits them alike:

- lockstep: ``curl tftp://`` of a 32 MiB file at blksize 512, 1468 and 65464
  (the blksize the server really answered is shown when it differs);
- windowed: ``atftp --option "windowsize 16" --option "blksize 1468"``, and the
  same atftp without windowsize as its own lockstep reference (servers without
  RFC 7440 are not run windowed);
- storm: 200 concurrent lockstep clients (``benchmarks/tftp_storm.py``, each from
  its own source address) fetching a 40 KiB file, then 200 fetching a 32 MiB
  one (each storm bounded at 120 s): total time, failures, the server's RSS
  before and its peak (VmHWM, reset with /proc/PID/clear_refs before each storm);
- loss: a 128 KiB file by curl (512-byte blocks) with 5 % of datagrams
  dropped each way on the server's veth (nftables, lab/netns.py);
- listener: ``benchmarks/tftp_flood.py`` sends read requests for a file that
  does not exist from 64 ports at 5,000, 10,000 and 20,000 a second for 5 s
  each (issue 18: a listener must take 10,000 a second, most refused): the
  share answered, and the datagrams the server namespace's kernel dropped for
  a full receive buffer (Udp RcvbufErrors), servers one at a time
  (``--flood-distinct``: a new name per request).

twisted-floor (``benchmarks/tftp_floor.py``) is a bare Twisted loop (lockstep
and windowed, one write per datagram): the ceiling for a server on Twisted's
reactor. python-floor (``benchmarks/tftp_python_floor.py``) is a bare epoll loop
in plain Python with connected sockets and an mmap (lockstep only): the ceiling
for any CPython server, pxed's own loop included. Medians of ``--runs`` runs;
MB/s is 10^6 bytes per second; server CPU per block is utime+stime (children
included) over the transfer, divided by its blocks. Results are printed as
Markdown and written to benchmarks/results/tftp-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lab.netns import Background, Namespace, NetnsLab, Pair
from lab.procs import run

REPO = Path(__file__).resolve().parents[1]

MIB = 1024 * 1024
SERVER_CPU = "1"
STORM_CPU = "0"  # 200 clients at once want the other CPU, not a share of the server's
PHASES = ("lockstep", "windowed", "storm", "loss", "listener")
FLOOD_RATES = (5_000, 10_000, 20_000)
FLOOD_SECONDS = 5
PEERS = ("tftpy", "py3tftp", "pypxe", "fbtftp")
BLKSIZES = (512, 1468, 65464)
STORM_SOURCES = range(10, 210)  # client addresses .10-.209, one per storm client
RUN_TIMEOUT = 60.0  # the slowest peer needs ~15 s for 32 MiB at blksize 512
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


class BenchmarkError(Exception):
    """A tool is missing or a server did not come up; the message says which."""


@dataclass
class Server:
    """One TFTP server under test, running in the server namespace for the whole run."""

    name: str
    port: int
    argv: list[str]
    windowsize: bool  # does it implement RFC 7440?
    one_process: bool  # is its RSS the RSS of all its transfers?
    proc: Background | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@dataclass
class Sample:
    """One transfer: seconds taken (None when it failed) and what the server negotiated."""

    seconds: float | None
    note: str = ""
    cpu: float | None = None  # server CPU seconds (its own and its reaped children's)


@dataclass
class Results:
    """Every sample, by (scenario, server)."""

    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    storms: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    floods: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)

    def add(self, scenario: str, server: str, sample: Sample) -> Sample:
        self.samples.setdefault((scenario, server), []).append(sample)
        return sample

    def median(self, scenario: str, server: str) -> float | None:
        times = [s.seconds for s in self.samples.get((scenario, server), []) if s.seconds]
        return statistics.median(times) if times else None

    def cpu(self, scenario: str, server: str) -> float | None:
        times = [s.cpu for s in self.samples.get((scenario, server), []) if s.seconds and s.cpu]
        return statistics.median(times) if times else None

    def failures(self, scenario: str, server: str) -> int:
        return sum(s.seconds is None for s in self.samples.get((scenario, server), []))

    def notes(self, scenario: str, server: str) -> str:
        notes = {s.note for s in self.samples.get((scenario, server), []) if s.note}
        return ", ".join(sorted(notes))


# --- files and servers -------------------------------------------------------------------


def make_files(root: Path, size_mib: int, storm_mib: int) -> dict[str, Path]:
    """Random content (no server can win by compressing or caching patterns)."""
    root.mkdir(mode=0o755)
    sizes = {
        "big.bin": size_mib * MIB,
        "storm-small.bin": 40 * 1024,
        "storm-big.bin": storm_mib * MIB,
        "loss.bin": 128 * 1024,
    }
    files = {}
    for name, size in sizes.items():
        path = root / name
        with path.open("wb") as out:
            for offset in range(0, size, MIB):
                out.write(os.urandom(min(MIB, size - offset)))
        path.chmod(0o644)
        files[name] = path
    return files


def peer_python(venv: Path) -> Path:
    """A venv with the Python peers; made (once, when kept) with pip from PyPI."""
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)], timeout=120.0)
    run(
        [str(python), "-m", "pip", "install", "-q", "tftpy", "py3tftp", "pypxe", "fbtftp"],
        timeout=300.0,
    )
    return python


def debian_binary(work: Path, package: str, binary: str, version_says: str) -> str:
    """`binary` from `package`: the installed one if it is that package's, else unpacked here.

    atftpd and tftpd-hpa conflict (both ship /usr/sbin/in.tftpd), so a machine has at
    most one installed; `apt-get download` + `dpkg -x` runs the other by PID without
    its init script starting a server in the root namespace.
    """
    installed = shutil.which(binary)
    if installed:
        probe = subprocess.run([installed, "-V"], capture_output=True, text=True, timeout=10)
        if version_says in probe.stdout + probe.stderr:
            return installed
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    run(["env", "-C", str(debs), "apt-get", "download", package], timeout=120.0)
    deb = next(debs.glob(f"{package}_*.deb"))
    run(["dpkg", "-x", str(deb), str(debs / package)], timeout=60.0)
    return str(debs / package / "usr" / "sbin" / binary)


def servers(work: Path, root: Path, ip: str, python: Path | None) -> list[Server]:
    """Each server's command line; dnsmasq has no TFTP port option, so it gets 69."""
    hpa = debian_binary(work, "tftpd-hpa", "in.tftpd", "tftp-hpa")
    atftpd = debian_binary(work, "atftpd", "atftpd", "atftp")
    cfg = work / "pxed.yaml"
    cfg.write_text(PXED_CONFIG.format(ip=ip, port=1069, root=root, state=work / "pxed-state"))
    found = [
        Server("pxed", 1069, [str(REPO / ".venv/bin/twistd"), "-n", "--pidfile=", "pxed",
                              "--config", str(cfg)], True, True),
        Server("dnsmasq", 69, ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
                               "--enable-tftp", f"--tftp-root={root}", f"--listen-address={ip}",
                               "--bind-interfaces", "--user=root", "--tftp-max=1000",
                               "--log-facility=-", f"--pid-file={work / 'dnsmasq.pid'}"],
               False, True),
        Server("tftpd-hpa", 2069, [hpa, "--foreground", "--address", f"{ip}:2069",
                                   "--user", "root", "--secure", str(root)], False, False),
        Server("atftpd", 3069, [atftpd, "--daemon", "--no-fork", "--port", "3069",
                                "--bind-address", ip, "--user", "root", "--group", "root",
                                "--maxthread", "1000", "--logfile", str(work / "atftpd.log"),
                                str(root)], True, True),
        Server("twisted-floor", 8069, [str(REPO / ".venv/bin/python"), "-P",
                                       str(REPO / "benchmarks" / "tftp_floor.py"), ip, "8069",
                                       str(root)], True, True),
        Server("python-floor", 9069, [str(REPO / ".venv/bin/python"), "-P",
                                      str(REPO / "benchmarks" / "tftp_python_floor.py"), ip,
                                      "9069", str(root)], False, True),
    ]  # fmt: skip
    if python is not None:
        runner = str(REPO / "benchmarks" / "tftp_peers.py")
        found += [
            Server("tftpy", 4069, [str(python), "-P", runner, "tftpy", ip, "4069", str(root)],
                   False, True),
            Server("py3tftp", 5069, ["env", "-C", str(root), str(python), "-m", "py3tftp",
                                     "--host", ip, "-p", "5069"], True, True),
            Server("pypxe", 6069, [str(python), "-P", runner, "pypxe", ip, "6069", str(root)],
                   False, True),
            Server("fbtftp", 7069, [str(python), "-P", runner, "fbtftp", ip, "7069", str(root)],
                   False, False),
        ]  # fmt: skip
    return found


PXED_CONFIG = """\
server:
  address: {ip}
  state_dir: {state}
tftp:
  root: {root}
  listen: [{ip}]
  port: {port}
  max_blksize: 65464
  max_windowsize: 16
dhcp:
  mode: "off"
http:
  enabled: false
"""


def start(ns: Namespace, server: Server) -> None:
    """Start `server` pinned to the server CPU; `taskset` and `ip netns exec` exec, so
    the PID we hold is the server's own."""
    server.proc = ns.spawn(["taskset", "-c", SERVER_CPU, *server.argv])
    try:
        ns.wait_listening(server.port, timeout=20.0)
    except Exception as exc:
        raise BenchmarkError(f"{server.name} did not listen:\n{server.proc.output()}") from exc


# --- clients -----------------------------------------------------------------------------


def client_run(
    ns: Namespace, argv: Sequence[str], timeout: float, cpu: str
) -> tuple[float, str, int]:
    """Run a client pinned to `cpu`: (wall seconds, stdout+stderr, exit code)."""
    began = time.monotonic()
    try:
        done = subprocess.run(
            ns.argv(["taskset", "-c", cpu, *argv]),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return time.monotonic() - began, "timed out", -1
    return time.monotonic() - began, done.stdout + done.stderr, done.returncode


def curl(ns: Namespace, ip: str, server: Server, name: str, size: int, blksize: int | None,
         cpu: str, timeout: float = RUN_TIMEOUT) -> Sample:  # fmt: skip
    """One curl fetch; its own time_total, checked against the file's size."""
    argv = ["curl", "-sS", "-v", "-o", "/dev/null", "-m", str(int(timeout - 5))]
    if blksize is not None:
        argv += ["--tftp-blksize", str(blksize)]
    argv += ["-w", "RESULT %{size_download} %{time_total}\n", f"tftp://{ip}:{server.port}/{name}"]
    _, out, code = client_run(ns, argv, timeout, cpu)
    result = re.search(r"RESULT (\d+) ([\d.]+)", out)
    if code != 0 or result is None or int(result.group(1)) != size:
        return Sample(None, _why(out, code))
    answered = re.search(r"blksize parsed from OACK \((\d+)\)", out)
    note = ""
    if blksize is not None and answered is None:
        note = "no OACK (512)"
    elif answered is not None and blksize is not None and int(answered.group(1)) != blksize:
        note = f"answered {answered.group(1)}"
    return Sample(float(result.group(2)), note)


def atftp(ns: Namespace, ip: str, server: Server, name: str, size: int, windowsize: int | None,
          out: Path, cpu: str) -> Sample:  # fmt: skip
    """One atftp fetch into `out` (checked by size, then removed)."""
    argv = ["atftp", "--option", "blksize 1468", "--tftp-timeout", "1"]
    if windowsize is not None:
        argv += ["--option", f"windowsize {windowsize}"]
    argv += ["-g", "-r", name, "-l", str(out), ip, str(server.port)]
    seconds, text, code = client_run(ns, argv, RUN_TIMEOUT, cpu)
    got = out.stat().st_size if out.exists() else -1
    out.unlink(missing_ok=True)
    if code != 0 or got != size:
        return Sample(None, _why(text, code))
    return Sample(seconds)


def _why(out: str, code: int) -> str:
    if code in (-1, 28):  # killed by our timeout, or curl's own -m
        return "timed out"
    lines = [line for line in out.splitlines() if line.strip() and not line.startswith("*")]
    return f"exit {code}: {(lines or ['?'])[-1][:60]}"


def storm(ns: Namespace, ip: str, server: Server, name: str, path: Path, clients: int,
          subnet_prefix: str) -> dict[str, object]:  # fmt: skip
    """One storm against `server`, with its RSS before and the peak during it."""
    status = Path(f"/proc/{server.pid}/status")
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _kib(status, "VmRSS")
    argv = [sys.executable, "-P", str(REPO / "benchmarks" / "tftp_storm.py"), ip, str(server.port),
            name, "--expect", str(path), "--clients", str(clients), "--deadline", "120",
            "--sources", f"{subnet_prefix}.{STORM_SOURCES[0]}-{STORM_SOURCES[-1]}"]  # fmt: skip
    _, out, code = client_run(ns, argv, 150.0, STORM_CPU)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result: dict[str, object] = json.loads(lines[-1]) if code == 0 and lines else {"error": out}
    result["rss_before_kib"] = before
    result["rss_peak_kib"] = _kib(status, "VmHWM")
    return result


def server_cpu(server: Server) -> float:
    """utime+stime+cutime+cstime: tftpd-hpa and fbtftp serve from children they reap."""
    fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLOCK_TICK


def timed(server: Server, fetch: Callable[[], Sample]) -> Sample:
    """`fetch()` with the server's CPU time it cost."""
    before = server_cpu(server)
    sample = fetch()
    sample.cpu = server_cpu(server) - before
    return sample


def _kib(status: Path, key: str) -> int:
    found = re.search(rf"^{key}:\s+(\d+) kB", status.read_text(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def loss(cli: Namespace, ip: str, lossy: list[Server], runs: int, size: int, res: Results) -> None:
    """Every lossy transfer at once: they wait on timers, not CPU, so they do not
    disturb each other, and the phase takes as long as its slowest run (<= 125 s)."""
    jobs = [s for _ in range(runs) for s in lossy]
    with ThreadPoolExecutor(len(jobs)) as pool:
        samples = list(
            pool.map(lambda s: curl(cli, ip, s, "loss.bin", size, None, STORM_CPU, 125.0), jobs)
        )
    for server, sample in zip(jobs, samples, strict=True):
        res.add("loss", server.name, sample)


def rcvbuf_errors(ns: Namespace) -> int:
    """The namespace's UDP datagrams dropped for a full receive buffer, since it began."""
    udp = [line.split() for line in ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
           if line.startswith("Udp:")]  # fmt: skip
    return int(udp[1][udp[0].index("RcvbufErrors")])


def flood(
    cli: Namespace, srv: Namespace, ip: str, server: Server, rate: int, distinct: bool
) -> dict[str, int]:
    """One listener flood against `server`: sent, answered, kernel drops meanwhile."""
    before = rcvbuf_errors(srv)
    argv = [sys.executable, "-P", str(REPO / "benchmarks" / "tftp_flood.py"), ip,
            str(server.port), "--rate", str(rate), "--seconds", str(FLOOD_SECONDS),
            *(["--distinct"] if distinct else [])]  # fmt: skip
    _, out, code = client_run(cli, argv, FLOOD_SECONDS + 30.0, STORM_CPU)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        return {"sent": 0, "answered": 0, "drops": -1}
    result: dict[str, int] = json.loads(lines[-1])
    result["drops"] = rcvbuf_errors(srv) - before
    return result


# --- the run -----------------------------------------------------------------------------


STARTED = time.monotonic()


def progress(what: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f} s] {what} ...", flush=True)


def rounds(runs: int, servers: list[Server], measure: Callable[[Server], Sample]) -> None:
    """Each round visits every server, starting one further along each time; a server
    that failed once is not asked again in this scenario (a stall costs RUN_TIMEOUT)."""
    failed: set[str] = set()
    for n in range(runs):
        for i in range(len(servers)):
            server = servers[(i + n) % len(servers)]
            if server.name not in failed and measure(server).seconds is None:
                failed.add(server.name)


def benchmark(args: argparse.Namespace, work: Path, res: Results) -> dict[str, str]:
    files = make_files(work / "root", args.size_mib, args.storm_mib)
    sizes = {name: path.stat().st_size for name, path in files.items()}
    python = None
    if not args.no_peers:
        python = peer_python(args.peer_venv or work / "peers")
    with NetnsLab(work) as lab:
        net: Pair = lab.pair()
        ip, cli = str(net.server_ip), net.client
        prefix = ip.rsplit(".", 1)[0]
        batch = work / "addresses"
        batch.write_text(
            "".join(f"addr add {prefix}.{n}/24 dev {net.client_if}\n" for n in STORM_SOURCES)
        )
        run(["ip", "-n", cli.name, "-batch", str(batch)], timeout=30.0)
        chosen = [
            s for s in servers(work, files["big.bin"].parent, ip, python)
            if not args.only or s.name in args.only
        ]  # fmt: skip
        for server in chosen:
            start(net.server, server)
        out, cpu = work / "atftp.out", args.client_cpu
        big = sizes["big.bin"]

        def lockstep(server: Server, blksize: int) -> Sample:
            fetch = lambda: curl(cli, ip, server, "big.bin", big, blksize, cpu)  # noqa: E731
            return res.add(f"curl {blksize}", server.name, timed(server, fetch))

        def windowed(server: Server, windowsize: int | None) -> Sample:
            fetch = lambda: atftp(cli, ip, server, "big.bin", big, windowsize, out, cpu)  # noqa: E731
            return res.add("atftp 1468" + (f" w{windowsize}" if windowsize else ""), server.name,
                           timed(server, fetch))  # fmt: skip

        if "lockstep" in args.phases:
            for blksize in BLKSIZES:
                progress(f"lockstep blksize {blksize}")
                rounds(args.runs, chosen, lambda s, b=blksize: lockstep(s, b))
        if "windowed" in args.phases:
            progress("atftp lockstep and windowsize 16")
            rounds(args.runs, chosen, lambda s: windowed(s, None))
            rounds(args.runs, [s for s in chosen if s.windowsize], lambda s: windowed(s, 16))
        if "storm" in args.phases:
            for server in [s for s in chosen if s.name in args.storm]:
                for label in ("storm-small.bin", "storm-big.bin"):
                    progress(f"storm {server.name} {label}")
                    res.storms[(label, server.name)] = storm(
                        cli, ip, server, label, files[label], args.clients, prefix
                    )
        if "loss" in args.phases:
            progress("5% loss each way")
            net.server.impair(net.server_if, drop_percent=5)
            lossy = [s for s in chosen if s.name in args.loss]
            loss(cli, ip, lossy, args.loss_runs, sizes["loss.bin"], res)
        if "listener" in args.phases:
            for rate in FLOOD_RATES:
                for server in chosen:
                    progress(f"listener {server.name} {rate}/s")
                    res.floods[(rate, server.name)] = flood(
                        cli, net.server, ip, server, rate, args.flood_distinct
                    )
        for server in chosen:
            if server.proc is not None and not server.proc.running():
                print(f"warning: {server.name} exited during the run", file=sys.stderr)
    return {s.name: ("windowsize" if s.windowsize else "") for s in chosen}


# --- the report --------------------------------------------------------------------------


def report(args: argparse.Namespace, res: Results, kinds: dict[str, str]) -> str:
    names = list(kinds)
    size = args.size_mib * MIB

    def mbps(scenario: str, name: str) -> float | None:
        t = res.median(scenario, name)
        return size / t / 1e6 if t else None

    def cell(scenario: str, name: str, reference: float | None) -> str:
        rate = mbps(scenario, name)
        if (scenario, name) not in res.samples:
            return "-"
        if rate is None:
            return f"failed ({res.notes(scenario, name) or 'all runs'})"
        text = f"{rate:.1f}"
        if reference:
            text += f" ({rate / reference:.2f}x)"
        fails = res.failures(scenario, name)
        extra = [n for n in (res.notes(scenario, name), f"{fails} failed" if fails else "") if n]
        return text + (f" [{'; '.join(extra)}]" if extra else "")

    load = os.getloadavg()
    lines = [
        f"# pxed TFTP benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{platform.node()}: {os.cpu_count()} CPUs, Linux {platform.release()}; "
        f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}. Server and "
        f"client in two network namespaces joined by a veth (MTU 1500); servers pinned to "
        f"CPU {SERVER_CPU}, curl and atftp to CPU {args.client_cpu}, storm and loss clients "
        f"to CPU {STORM_CPU}. Median of {args.runs} runs "
        f"(loss: {args.loss_runs}); MB/s = 10^6 bytes/s; (Nx) = ratio to dnsmasq.",
        "",
        f"## Throughput, {args.size_mib} MiB file, MB/s",
        "",
        "| server | curl blksize 512 | curl 1468 | curl 65464 | atftp 1468 "
        "| atftp 1468 windowsize 16 | server CPU µs/block, curl 1468 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        row = [name]
        for scenario in ("curl 512", "curl 1468", "curl 65464", "atftp 1468"):
            row.append(cell(scenario, name, mbps(scenario, "dnsmasq")))
        row.append(cell("atftp 1468 w16", name, mbps("curl 1468", "dnsmasq")))
        cpu = res.cpu("curl 1468", name)
        row.append(f"{cpu / (size / 1468) * 1e6:.1f}" if cpu else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "The windowsize 16 column's ratio is to dnsmasq's curl lockstep at 1468 (the target's "
        "reference); servers without RFC 7440 are not run there.",
        "",
        f"## Boot storm: {args.clients} concurrent lockstep clients (blksize 1468)",
        "",
        "| server | file | total s | failures | per client median / max s "
        "| RSS before | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    labels = {"storm-small.bin": "40 KiB", "storm-big.bin": f"{args.storm_mib} MiB"}
    for (label, name), r in res.storms.items():
        if "error" in r:
            lines.append(f"| {name} | {labels[label]} | failed: {str(r['error'])[-80:]!r} |||||")
            continue
        reasons = "; ".join(str(x) for x in r["reasons"])  # type: ignore[attr-defined]
        fails = f"{r['failures']}" + (f" ({reasons})" if reasons else "")
        per = f"{_num(r['median_s'])} / {_num(r['max_s'])}"
        rss = f"{int(r['rss_before_kib']) / 1024:.1f} MiB"  # type: ignore[call-overload]
        peak = f"{int(r['rss_peak_kib']) / 1024:.1f} MiB"  # type: ignore[call-overload]
        total = _num(r["total_s"])
        lines.append(f"| {name} | {labels[label]} | {total} | {fails} | {per} | {rss} | {peak} |")
    lines += [
        "",
        f"## 5 % loss each way, {128} KiB file, curl with 512-byte blocks",
        "",
        "| server | median s | failed runs | ratio to dnsmasq |",
        "| --- | --- | --- | --- |",
    ]
    ref = res.median("loss", "dnsmasq")
    for name in names:
        if ("loss", name) not in res.samples:
            continue
        t = res.median("loss", name)
        ratio = f"{t / ref:.2f}x" if t and ref else "-"
        lines.append(f"| {name} | {_num(t)} | {res.failures('loss', name)} | {ratio} |")
    if res.floods:
        lines += [
            "",
            f"## Listener: read requests for a missing file, {FLOOD_SECONDS} s at each rate",
            "",
            "Share answered (an ERROR back), and in brackets the datagrams the kernel "
            "dropped for a full receive buffer meanwhile.",
            "",
            "| server | " + " | ".join(f"{rate:,}/s" for rate in FLOOD_RATES) + " |",
            "| --- |" + " --- |" * len(FLOOD_RATES),
        ]
        for name in names:
            cells = []
            for rate in FLOOD_RATES:
                got = res.floods.get((rate, name))
                if got is None or not got["sent"]:
                    cells.append("-" if got is None else "failed")
                    continue
                cells.append(f"{100 * got['answered'] / got['sent']:.0f} % ({got['drops']:,})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets (issue 3)", "", *targets(res, names, mbps), ""]
    return "\n".join(lines)


def targets(res: Results, names: list[str], mbps: Callable[[str, str], float | None]) -> list[str]:
    """Issue 3's targets, each met, NOT met, or n/a when its servers were not run."""

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    def at_least(a: float | None, factor: float, b: float | None) -> bool | None:
        return None if a is None or b is None else a >= factor * b

    pxed, dns = mbps("curl 1468", "pxed"), mbps("curl 1468", "dnsmasq")
    peers = [mbps("curl 1468", p) or 0.0 for p in names if p in PEERS]
    best = max(peers) if peers else None
    w16 = mbps("atftp 1468 w16", "pxed")
    loss, loss_ref = res.median("loss", "pxed"), res.median("loss", "dnsmasq")
    storms = [r for (_, n), r in res.storms.items() if n == "pxed"]
    storm_ok = all(r.get("failures") == 0 for r in storms) if storms else None
    return [
        f"- lockstep 1468 >= 0.9x dnsmasq: {verdict(at_least(pxed, 0.9, dns))} "
        f"({_ratio(pxed, dns)})",
        f"- lockstep 1468 ahead of every Python peer: {verdict(at_least(pxed, 1.0, best))} "
        f"(pxed {_num(pxed)} MB/s, best peer {_num(best)} MB/s)",
        f"- windowsize 16 >= 1.5x dnsmasq lockstep: {verdict(at_least(w16, 1.5, dns))} "
        f"({_ratio(w16, dns)})",
        f"- 5 % loss <= 0.5x dnsmasq's time: {verdict(at_least(loss_ref, 2.0, loss))} "
        f"({_ratio(loss, loss_ref)})",
        f"- storm with 0 failures: {verdict(storm_ok)}",
        "- RSS flat in file size and client count: see pxed's storm rows (peak vs before)",
    ]


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _num(x: object) -> str:
    return f"{x:.2f}" if isinstance(x, float) else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 runs, 8 MiB files, 100 storm clients"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loss-runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=32)
    parser.add_argument("--storm-mib", type=int, default=32, help="the storm's big file")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--only", type=lambda s: s.split(","), help="servers to run")
    parser.add_argument("--storm", type=lambda s: s.split(","), default=["pxed", "dnsmasq"])
    parser.add_argument("--loss", type=lambda s: s.split(","),
                        default=["pxed", "dnsmasq", "tftpd-hpa", "atftpd"])  # fmt: skip
    parser.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES))
    parser.add_argument("--client-cpu", default=SERVER_CPU,
                        help="CPU of the throughput clients (default: the server's)")  # fmt: skip
    parser.add_argument("--no-peers", action="store_true", help="skip the PyPI servers")
    parser.add_argument("--flood-distinct", action="store_true",
                        help="listener: a new missing name per request, not one name")  # fmt: skip
    parser.add_argument("--peer-venv", type=Path, help="keep the peers' venv here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.loss_runs, args.size_mib, args.storm_mib, args.clients = 3, 3, 8, 2, 100
    if os.geteuid() != 0:
        raise BenchmarkError("needs root: it builds private network namespaces")
    for tool in ("curl", "atftp", "dnsmasq", "apt-get", "taskset", "nft"):
        if shutil.which(tool) is None:
            raise BenchmarkError(f"{tool} is missing (Debian packages: curl atftp "
                                 "dnsmasq-base util-linux nftables)")  # fmt: skip
    # A SIGTERM (timeout, Ctrl-C's cousin) still runs the clean-up in NetnsLab.__exit__.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = Results()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pxed-bench-tftp-") as tmp:
        kinds = benchmark(args, Path(tmp), res)
    text = report(args, res, kinds)
    text += f"\nWhole run: {time.monotonic() - began:.0f} s.\n"
    print(text)
    results = REPO / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"tftp-{datetime.date.today()}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
