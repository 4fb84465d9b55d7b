"""Run a benchmark end to end: per size generate the region and time matching; at the
service size also the mail path, contention, throughput and memory. Returns the JSON
document (see `report`).

A figure whose code is not built yet reports "n/a" with the reason; an unexpected
failure of one figure is reported as an error and the others still run.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ptmatch import clock
from ptmatch.bench import generate, matching, report
from ptmatch.bench.stats import Missing
from ptmatch.config import load_settings
from ptmatch.db import is_sqlite, make_engine, make_session_factory

DEFAULT_URL = "sqlite:////tmp/ptmatch-bench.sqlite"


@dataclass
class Plan:
    database_url: str
    sizes: list[int]
    service_size: int | None
    seed: int
    quick: bool
    match_slots: int
    match_passes: int
    mail_repetitions: int
    contention_rounds: int
    contention_clients: int
    throughput_seconds: float
    force: bool = False
    postcodes: Path | None = None
    worker_class: str = "gthread"

    @classmethod
    def make(
        cls,
        database_url: str | None,
        sizes: list[int] | None,
        quick: bool,
        seed: int,
        force: bool = False,
        postcodes: Path | None = None,
        worker_class: str = "gthread",
    ) -> Plan:
        url = database_url or DEFAULT_URL
        if not sizes:
            sizes = (
                [10_000] if quick else [10_000, 100_000] + ([] if is_sqlite(url) else [1_000_000])
            )
        sizes = sorted(set(sizes))
        # The service figures run once, at 100k (the "after the 100k run") or the
        # largest size below it.
        below = [s for s in sizes if s <= 100_000]
        service = max(below) if below else min(sizes)
        return cls(
            url,
            sizes,
            service,
            seed,
            quick,
            match_slots=20 if quick else 40,
            match_passes=2 if quick else 3,
            mail_repetitions=5 if quick else 20,
            contention_rounds=5 if quick else 20,
            contention_clients=100,
            throughput_seconds=6 if quick else 20,
            force=force,
            postcodes=postcodes,
            worker_class=worker_class,
        )


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _figure(name: str, func: Callable[[], dict], echo: Callable[[str], None], log: Path) -> dict:
    echo(f"  {name} ...")
    started = time.perf_counter()
    try:
        result = func()
    except Missing as err:
        echo(f"  {name}: {report.NA} ({err})")
        return {"status": "n/a", "reason": str(err)}
    except Exception as err:
        with open(log, "a") as fh:
            fh.write(f"--- {name}\n{traceback.format_exc()}\n")
        echo(f"  {name}: ERROR {type(err).__name__}: {err} (traceback in {log})")
        return {"status": "error", "reason": f"{type(err).__name__}: {err}"}
    result["status"] = "ok"
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def run(plan: Plan, echo: Callable[[str], None], progress_factory) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="ptmatch-bench-"))
    errors_log = run_dir / "errors.log"
    engine = make_engine(plan.database_url)
    doc: dict = {
        "engine": engine.dialect.name,
        "database": safe_url(plan.database_url),
        "seed": plan.seed,
        "quick": plan.quick,
        "started": clock.now().isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "machine": report.machine(engine),
        "sizes": {},
        "service": {"size": plan.service_size},
    }
    engine.dispose()
    echo(f"ptmatch bench on {doc['database']} (logs in {run_dir})")
    for size in plan.sizes:
        echo(f"== {report.size_label(size)} active patients")
        generate.reset_database(plan.database_url, force=plan.force)
        engine = make_engine(plan.database_url)
        # The defaults, not the developer's environment: one run is like the next.
        settings = load_settings(str(run_dir), {"DATABASE_URL": plan.database_url}, environ={})
        sessions = make_session_factory(engine, settings)
        spec = generate.Spec(size, seed=plan.seed, postcodes=plan.postcodes)
        total = size + int(size * spec.extra_ratio)
        now = clock.now()
        with progress_factory(total, f"generating {report.size_label(size)}") as bar:
            summary = generate.generate(engine, spec, now, progress=bar.update)
        generate.analyze(engine)
        echo(
            f"  generated in {summary.seconds:.0f} s: "
            + ", ".join(f"{k} {v}" for k, v in summary.rows.items())
        )
        block = {"generate": summary.as_dict()}
        block["matching"] = _figure(
            "matching",
            lambda sessions=sessions: matching.run(
                sessions,
                clock.now(),
                slots=plan.match_slots,
                passes=plan.match_passes,
                seed=plan.seed,
            ),
            echo,
            errors_log,
        )
        if size == plan.service_size or size == 100_000:
            block["workbench"] = _figure(
                "workbench free text",
                lambda sessions=sessions: _workbench(sessions, plan),
                echo,
                errors_log,
            )
        doc["sizes"][str(size)] = block
        if size == plan.service_size:
            doc["service"].update(_service(plan, sessions, run_dir, echo, errors_log))
        engine.dispose()
    doc["finished"] = clock.now().isoformat(timespec="seconds")
    doc["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return doc


def _workbench(sessions, plan: Plan) -> dict:
    from ptmatch.bench import workbench

    return workbench.run(sessions, clock.now(), passes=3 if plan.quick else 5)


def _service(plan: Plan, sessions, run_dir: Path, echo, errors_log: Path) -> dict:
    from ptmatch.bench import mail, server

    out = {
        "post_to_offers": _figure(
            "post -> offers -> SMTP",
            lambda: mail.run(
                sessions,
                plan.database_url,
                run_dir,
                repetitions=plan.mail_repetitions,
                seed=plan.seed,
            ),
            echo,
            errors_log,
        )
    }
    try:
        srv = server.Server(run_dir, plan.database_url, worker_class=plan.worker_class)
    except Missing as err:
        na = {"status": "n/a", "reason": str(err)}
        echo(f"  server figures: {report.NA} ({err})")
        return out | {"contention": na, "throughput": na, "memory": na}
    try:
        with srv:
            out["contention"] = _figure(
                "contention",
                lambda: server.contention(
                    srv,
                    sessions,
                    rounds=plan.contention_rounds,
                    clients=plan.contention_clients,
                    seed=plan.seed,
                ),
                echo,
                errors_log,
            )
            out["throughput"] = _figure(
                "throughput",
                lambda: server.throughput(
                    srv, sessions, seconds=plan.throughput_seconds, seed=plan.seed
                ),
                echo,
                errors_log,
            )
            served = any(out[k].get("status") == "ok" for k in ("contention", "throughput"))
            out["memory"] = _figure("memory", lambda: server.memory(srv, served), echo, errors_log)
    except Exception as err:  # gunicorn did not start
        with open(errors_log, "a") as fh:
            fh.write(f"--- server\n{traceback.format_exc()}\n")
        failed = {"status": "error", "reason": f"{type(err).__name__}: {err}"}
        echo(f"  server figures: ERROR {err}")
        for key in ("contention", "throughput", "memory"):
            out.setdefault(key, failed)
    return out
