"""Chaos: workers SIGKILLed at random while jobs run; every job ends and every cent adds up.

Two set-ups, each against the fake Replicate in its own process (images take ``latency``
seconds; every output file ends with its prediction's id, so a stored image tells where it came
from; the fake lists its predictions, so lost ones can be found, and says which it would bill):

- ``embedded``: ``storyboard serve`` (API, studio and the in-process worker) on SQLite, killed
  with SIGKILL at random moments (a seeded ``random.Random``) and started again;
- ``dramatiq``: one ``storyboard serve`` API on PostgreSQL sending jobs through RabbitMQ, and
  three ``storyboard worker`` processes, one of them SIGKILLed at random and started again.

Jobs are submitted over HTTP while the kills happen. At the end the figures are checked:
every job final (ready), no completed scene without its file, the bytes on disk those of the
scene's own prediction, the jobs' ``actual_cost`` equal to what the fake bills, at most one
extra create per kill, and no answer of the API a 5xx.

``python -m tests.chaos`` (``make chaos``) runs the long version and prints the figures;
``tests/test_chaos.py`` a short one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tests package is importable
    sys.path.insert(0, str(ROOT))

from tests.fake_replicate import FAKE_API_KEY, TAG, FakeReplicateProcess

__all__ = ["Figures", "run_chaos"]

PRICE = 0.003
SCENES = 6  # a 30-second job
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 dbname=test"


@dataclass
class Figures:
    """What one chaos run did and found."""

    mode: str
    jobs: int
    kills: int
    seconds: float = 0.0
    ready: int = 0
    not_final: list[int] = field(default_factory=list)
    scenes: int = 0
    creations: int = 0
    billed: int = 0  # predictions the fake would bill
    actual_cost: float = 0.0  # the jobs' own sum
    possible_cost: float = 0.0
    missing_files: list[str] = field(default_factory=list)
    wrong_bytes: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    resumed: int = 0  # runs that took a job over from a killed one (read off the logs)

    @property
    def extra_creates(self) -> int:
        return self.creations - self.scenes

    def problems(self) -> list[str]:
        """What breaks the promises (empty: all held)."""
        found = []
        if self.not_final or self.ready != self.jobs:
            found.append(f"jobs not ready: {self.not_final}")
        if self.missing_files:
            found.append(f"completed scenes without their file: {self.missing_files[:5]}")
        if self.wrong_bytes:
            found.append(f"images not their scene's own prediction's: {self.wrong_bytes[:5]}")
        if abs(self.actual_cost - self.billed * PRICE) > 1e-6:
            found.append(f"actual_cost ${self.actual_cost:.3f} but the provider bills "
                         f"${self.billed * PRICE:.3f} ({self.billed} predictions)")
        if self.extra_creates > self.kills:
            found.append(f"{self.extra_creates} extra creates for {self.kills} kills")
        if self.server_errors:
            found.append(f"5xx answers: {self.server_errors[:5]}")
        return found

    def summary(self) -> str:
        return (f"{self.mode}: {self.jobs} jobs x {SCENES} scenes, {self.kills} SIGKILLs, "
                f"{self.seconds:.0f} s: {self.ready} ready; {self.creations} creates for "
                f"{self.scenes} scenes ({self.extra_creates} extra), {self.resumed} jobs resumed "
                f"after a kill; provider bills "
                f"{self.billed} = ${self.billed * PRICE:.3f}, jobs say ${self.actual_cost:.3f}"
                f"{f' (+${self.possible_cost:.3f} possible)' if self.possible_cost else ''}; "
                f"files missing {len(self.missing_files)}, wrong bytes {len(self.wrong_bytes)}, "
                f"5xx {len(self.server_errors)}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Fleet:
    """The processes of one run, their logs, and the API they serve."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log_paths: dict[str, Path] = {}
        self.starts = 0

    def start(self, name: str, *args: str) -> None:
        self.starts += 1
        path = self.logs / f"{name}-{self.starts}.log"
        with open(path, "wb") as log:  # the child keeps it
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "storyboard", *args], env={**os.environ, **self.env},
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.log_paths[name] = path

    def start_worker(self, name: str) -> None:
        """A worker, waited for until it takes messages: a kill while it is still starting
        (seconds on a loaded machine) would test nothing."""
        self.start(name, "worker", "--threads", "8")
        deadline = time.monotonic() + 60
        while b"worker consuming queue" not in self.log_paths[name].read_bytes():
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: see {self.log_paths[name]}")
            time.sleep(0.1)

    def serve(self) -> None:
        self.start("serve", "serve", "--port", str(self.port))
        self.wait_for_api()

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def wait_for_api(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/api/v2/planning", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not come up")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)


class _Client:
    """The API as a client sees it: retries while the server restarts, records any 5xx."""

    def __init__(self, fleet: _Fleet, figures: Figures) -> None:
        self.fleet, self.figures = fleet, figures

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.request(method, f"{self.fleet.api}{path}", timeout=30, **kwargs)
            except httpx.HTTPError:  # restarting: not an answer, so not a 5xx
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            if response.status_code >= 500:
                self.figures.server_errors.append(f"{method} {path} -> {response.status_code}")
            return response


@contextmanager
def _postgres() -> Iterator[str]:
    import psycopg

    name = f"storyboard_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check(figures: Figures, database_url: str, media: Path, fake_url: str) -> None:
    """Read the outcome from the database, the disk and the fake."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        jobs = conn.execute(text("SELECT id, status, storyboard_data, actual_cost, possible_cost "
                                 "FROM generated_videos ORDER BY id")).all()
    engine.dispose()
    for job_id, status, storyboard, actual, possible in jobs:
        figures.ready += status == "storyboard_ready"
        if status not in ("storyboard_ready", "failed", "cancelled"):
            figures.not_final.append(job_id)
        figures.actual_cost += actual or 0.0
        figures.possible_cost += possible or 0.0
        for entry in json.loads(storyboard or "[]"):
            figures.scenes += 1
            if entry["generation_status"] != "completed":
                continue
            where = f"job {job_id} scene {entry['scene']['scene_number']}"
            path = media / entry["image_url"].removeprefix("/media/")
            if not path.is_file():
                figures.missing_files.append(where)
                continue
            data = path.read_bytes()
            own = TAG + str(entry.get("prediction_id")).encode()
            if not data.endswith(own):
                figures.wrong_bytes.append(where)
    stats = httpx.get(f"{fake_url.removesuffix('/v1')}/_fake/stats", timeout=10).json()
    figures.creations = stats["creations"]
    figures.billed = len(stats["billed"])


def run_chaos(mode: str, *, jobs: int, kills: int, seed: int, latency: float = 1.0,
              pause: tuple[float, float] = (0.2, 1.6), workdir: Path | None = None) -> Figures:
    """One chaos run (``embedded`` or ``dramatiq``); the figures, checked by ``problems()``."""
    rng = random.Random(seed)
    figures = Figures(mode, jobs, kills)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, \
            FakeReplicateProcess(latency=latency, tag_outputs=True) as fake, \
            (_postgres() if mode == "dramatiq" else _nothing()) as pg_url:
        work = workdir or Path(tmp)
        data = work / "DATA"
        env = {
            "DATA": str(data), "REPLICATE_API_KEY": FAKE_API_KEY,
            "REPLICATE_BASE_URL": fake.base_url, "STORYBOARD_IMAGE_PROVIDER": "replicate",
            "STORYBOARD_PLANNER": "rules", "STORYBOARD_IMAGE_PRICE": str(PRICE),
            "STORYBOARD_LEASE_SECONDS": "3", "STORYBOARD_STATUS_POLL_INTERVAL": "0.2",
            "STORYBOARD_WORKER_POLL_INTERVAL": "0.1", "STORYBOARD_REPLICATE_POLL_INTERVAL": "0.1",
            "STORYBOARD_REDISPATCH_INTERVAL": "1", "STORYBOARD_REDISPATCH_AFTER": "5",
            "STORYBOARD_SHUTDOWN_GRACE": "1",
        }
        if mode == "dramatiq":
            env |= {"DATABASE_URL": pg_url, "STORYBOARD_BROKER_URL": RABBITMQ_URL,
                    "STORYBOARD_QUEUE_NAME": f"sb_chaos_{uuid.uuid4().hex[:8]}"}
        for name in [k for k in os.environ if k.startswith(("STORYBOARD_", "OPENAI_"))]:
            env.setdefault(name, "")  # nothing of the caller's own setup leaks in
        env = {k: v for k, v in env.items() if v != ""}
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        fleet = _Fleet(env, logs)
        client = _Client(fleet, figures)
        workers = ["worker-1", "worker-2", "worker-3"] if mode == "dramatiq" else []
        try:
            fleet.serve()
            for name in workers:
                fleet.start_worker(name)
            submitted = 0
            per_kill = max(1, jobs // max(1, kills))
            for _ in range(kills):
                for _ in range(min(per_kill, jobs - submitted)):
                    client.call("POST", "/api/v2/generate",
                                json={"prompt": f"Chaos {submitted}", "duration": 30})
                    submitted += 1
                time.sleep(rng.uniform(*pause))
                victim = rng.choice(_busy(fleet, workers, env) or workers) if workers else "serve"
                fleet.kill(victim)
                if victim == "serve":
                    fleet.serve()
                else:
                    fleet.start_worker(victim)
            while submitted < jobs:
                client.call("POST", "/api/v2/generate",
                            json={"prompt": f"Chaos {submitted}", "duration": 30})
                submitted += 1
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                page = client.call("GET", "/api/v2/jobs?limit=100").json()
                if page["total"] == jobs and all(
                        j["status"] in ("storyboard_ready", "failed", "cancelled")
                        for j in page["jobs"]):
                    break
                time.sleep(0.5)
        finally:
            fleet.stop()
        url = env.get("DATABASE_URL") or f"sqlite:///{data / 'storyboard.db'}"
        _check(figures, url, data / "media", fake.base_url)
        figures.resumed = sum(log.read_text(errors="replace").count("resuming with")
                              for log in logs.glob("*.log"))
    figures.seconds = time.monotonic() - started
    return figures


def _busy(fleet: _Fleet, workers: list[str], env: dict[str, str],
          wait: float = 3.0) -> list[str]:
    """The workers holding a running job now (a kill that lands mid-job is the one that
    tests anything), waiting up to ``wait`` seconds for one while jobs are still open."""
    engine = create_engine(env["DATABASE_URL"])
    deadline = time.monotonic() + wait
    try:
        while True:
            with engine.connect() as conn:
                owners = conn.execute(text(
                    "SELECT lease_owner FROM generated_videos WHERE lease_owner IS NOT NULL "
                    "AND status IN ('pending', 'parsing', 'generating_storyboard')")
                ).scalars().all()
            pids = {int(o.split(":")[1]) for o in owners
                    if o.count(":") >= 3 and o.split(":")[1].isdigit()}
            busy = [name for name in workers if fleet.procs[name].pid in pids]
            if busy or time.monotonic() > deadline:
                return busy
            time.sleep(0.1)
    finally:
        engine.dispose()


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


def main() -> None:
    parser = argparse.ArgumentParser(description="Chaos runs: SIGKILLs while jobs run.")
    parser.add_argument("--mode", choices=["embedded", "dramatiq", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--kills", type=int, default=None,
                        help="SIGKILLs (default: 25 embedded, 20 dramatiq)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()
    modes = ["embedded", "dramatiq"] if args.mode == "both" else [args.mode]
    failed = False
    for mode in modes:
        kills = args.kills if args.kills is not None else (25 if mode == "embedded" else 20)
        figures = run_chaos(mode, jobs=args.jobs, kills=kills, seed=args.seed,
                            latency=args.latency)
        print(figures.summary(), flush=True)
        for problem in figures.problems():
            failed = True
            print(f"  PROBLEM: {problem}", flush=True)
        print(json.dumps({k: v for k, v in asdict(figures).items()
                          if not isinstance(v, list)}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
