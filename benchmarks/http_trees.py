"""HTTP throughput of a 1 GiB file: pxed (directory and ISO trees) vs nginx, http.server, twisted.

    .venv/bin/python benchmarks/http_trees.py [--size-mib 1024] [--seconds 10] [--clients 50]

Everything runs on 127.0.0.1 in a temporary directory: the file, an ISO built
from it with xorriso, nginx (Debian nginx-light) with its own minimal config and
prefix, ``python3 -m http.server``, stock ``twistd web`` (twisted.web.static.File,
what pxed would be without its own producer) and pxed's HTTP site. Each server
is started here and stopped by its PID. Scenarios:

- single: one curl GET of the whole file;
- N clients: wrk with N connections, each request a random 16 MiB Range,
  for a fixed time; throughput is all bytes received over that time.

nginx cannot look inside an ISO, so both pxed rows are compared with nginx
serving the plain file. http.server ignores Range (it sends the whole file),
which only flatters it. The client shares the machine's CPUs with the server,
the same way for every server; on a busy machine throughput swings a lot,
so servers are interleaved over rounds, medians reported, and the server's
own CPU time per GiB (which load elsewhere disturbs much less) shown too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPAN = 16 * 1024 * 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {prefix}/body;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""

WRK_SCRIPT = """\
math.randomseed({seed})
request = function()
  local start = math.random(0, {size} - {span})
  wrk.headers["Range"] = "bytes=" .. start .. "-" .. (start + {span} - 1)
  return wrk.format("GET", "{path}")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d\\n", summary.bytes, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout))
end
"""


class BenchmarkError(Exception):
    """A tool is missing or a server did not come up; the message says which."""


@dataclass
class Server:
    name: str
    source: str
    command: list[str]
    url_path: str
    port: int


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise BenchmarkError(f"{binary} not found: apt-get install -y {package}")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_file(path: Path, size: int) -> None:
    """Incompressible but cheap to write: one random MiB, repeated."""
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for _ in range(size // MIB):
            out.write(block)


def wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"server exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise BenchmarkError(f"nothing listening on 127.0.0.1:{port} after {seconds} s")


@contextlib.contextmanager
def running(server: Server, log: Path) -> Iterator[int]:
    """Start ``server``, yield its PID once it listens, stop it by that PID."""
    with log.open("ab") as out:
        process = subprocess.Popen(server.command, cwd=ROOT, stdout=out, stderr=out)
        try:
            wait_listening(server.port, process)
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of ``pid`` and its descendants (nginx's worker)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    family, total = {pid}, 0.0
    for _ in range(4):  # nginx is two levels deep; bounded anyway
        family |= {child for child, parent in parents.items() if parent in family}
    for member in family:
        total += times.get(member, 0.0)
    return total


@dataclass
class Sample:
    mib_per_s: float
    cpu_s_per_gib: float


def measured(pid: int, transfer: Callable[[], tuple[int, float]]) -> Sample:
    """Run ``transfer`` (returning bytes moved and seconds) and the server CPU it cost."""
    before = cpu_seconds(pid)
    moved, seconds = transfer()
    spent = cpu_seconds(pid) - before
    return Sample(moved / MIB / seconds, spent / (moved / GIB))


def single(url: str, size: int) -> tuple[int, float]:
    """One whole-file GET with curl: bytes and seconds."""
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "--max-time", "120", "-w",
         "%{size_download} %{time_total}", url],
        capture_output=True, text=True, timeout=150, check=True,
    )  # fmt: skip
    got, seconds = result.stdout.split()
    if int(got) != size:
        raise BenchmarkError(f"{url}: got {got} bytes, expected {size}")
    return int(got), float(seconds)


def concurrent(
    url: str, path: str, size: int, clients: int, seconds: int, work: Path
) -> tuple[int, float]:
    """Bytes and seconds of ``clients`` connections asking random 16 MiB ranges."""
    script = work / "ranges.lua"
    script.write_text(WRK_SCRIPT.format(seed=42, size=size, span=SPAN, path=path))
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--timeout", "60s",
         "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 90, check=True,
    )  # fmt: skip
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            received, micros, errors = map(int, line.split()[1:])
            if errors:
                print(f"  note: wrk counted {errors} errors against {url}", file=sys.stderr)
            return received, micros / 1e6
    raise BenchmarkError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


def servers(work: Path, tree: Path, iso: Path, clients: int) -> list[Server]:
    python = sys.executable
    nginx_port, http_port, twisted_port = free_port(), free_port(), free_port()
    pxed_port = free_port()
    prefix = work / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=nginx_port, root=tree))
    # Every wrk connection comes from 127.0.0.1, where on a LAN each installer has its own
    # address: pxed's per-address cap (http.max_per_client, 32) is lifted past the
    # clients, as nginx has none.
    pxed = [python, "-m", "tests.support.http_server", "--port", str(pxed_port),
            "--tree", f"dir={tree}", "--tree", f"iso={iso}",
            "--max-per-client", str(clients)]  # fmt: skip
    twistd = str(Path(python).with_name("twistd"))
    return [
        Server(
            "nginx",
            "directory",
            [need("nginx", "nginx-light"), "-p", str(prefix), "-c", str(conf)],
            "/big.img",
            nginx_port,
        ),
        Server("pxed", "directory", pxed, "/trees/dir/big.img", pxed_port),
        Server("pxed", "ISO", pxed, "/trees/iso/big.img", pxed_port),
        Server(
            "python3 -m http.server",
            "directory",
            [
                python,
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "--directory",
                str(tree),
                str(http_port),
            ],
            "/big.img",
            http_port,
        ),
        Server(
            "twistd web (static.File)",
            "directory",
            [
                twistd,
                "-n",
                "--pidfile",
                str(work / "twistd.pid"),
                "web",
                "--listen",
                f"tcp:{twisted_port}:interface=127.0.0.1",
                "--path",
                str(tree),
            ],
            "/big.img",
            twisted_port,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for binary, package in [("curl", "curl"), ("wrk", "wrk"), ("xorriso", "xorriso")]:
        need(binary, package)
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="pxed-bench-") as name:
        work = Path(name)
        work.chmod(0o755)  # nginx workers run as nobody
        tree = work / "tree"
        tree.mkdir()
        make_file(tree / "big.img", size)
        iso = work / "tree.iso"
        subprocess.run(
            ["xorriso", "-as", "mkisofs", "-R", "-J", "-quiet", "-o", str(iso), str(tree)],
            check=True, timeout=600,
        )  # fmt: skip
        for path in (tree / "big.img", iso):  # measure from the page cache, for everyone
            subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
        table = servers(work, tree, iso, args.clients)
        ones: list[list[Sample]] = [[] for _ in table]
        manys: list[list[Sample]] = [[] for _ in table]
        # Rounds interleave the servers, so a burst of load from something
        # else on the machine does not land on one server only.
        for round_ in range(args.rounds):
            for index, server in enumerate(table):
                with running(server, work / f"{index}.log") as pid:
                    url = f"http://127.0.0.1:{server.port}{server.url_path}"
                    one = measured(pid, lambda url=url: single(url, size))
                    many = measured(
                        pid,
                        lambda url=url, server=server: concurrent(
                            url, server.url_path, size, args.clients, args.seconds, work
                        ),
                    )
                ones[index].append(one)
                manys[index].append(many)
                print(
                    f"  round {round_ + 1}: {server.name} ({server.source}): "
                    f"{one.mib_per_s:.0f} / {many.mib_per_s:.0f} MiB/s",
                    flush=True,
                )
    report(args, table, [_median(s) for s in ones], [_median(s) for s in manys])


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.mib_per_s for s in samples),
        statistics.median(s.cpu_s_per_gib for s in samples),
    )


def report(
    args: argparse.Namespace, table: list[Server], ones: list[Sample], manys: list[Sample]
) -> None:
    n = args.clients
    print(
        f"\n{args.size_mib} MiB file on 127.0.0.1, {os.cpu_count()} CPUs shared with the "
        f"clients, median of {args.rounds} rounds; {n} clients = wrk, random 16 MiB "
        f"ranges for {args.seconds} s; CPU = server CPU seconds per GiB sent\n"
    )
    print(
        f"| server | source | 1 client MiB/s | x nginx | CPU s/GiB "
        f"| {n} clients MiB/s | x nginx | CPU s/GiB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for server, one, many in zip(table, ones, manys, strict=True):
        print(
            f"| {server.name} | {server.source} "
            f"| {one.mib_per_s:.0f} | {one.mib_per_s / ones[0].mib_per_s:.2f} "
            f"| {one.cpu_s_per_gib:.2f} "
            f"| {many.mib_per_s:.0f} | {many.mib_per_s / manys[0].mib_per_s:.2f} "
            f"| {many.cpu_s_per_gib:.2f} |"
        )


if __name__ == "__main__":
    try:
        main()
    except BenchmarkError as error:
        sys.exit(f"benchmark: {error}")
