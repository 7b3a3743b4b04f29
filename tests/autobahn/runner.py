"""Run the Autobahn|Testsuite ``fuzzingclient`` against a WebSocket echo server.

The suite (``autobahntestsuite``, Python 2.7 only) is driven as a subprocess, so this
module needs nothing but the Python 3 standard library. It can:

(a) write a fuzzingclient spec for one server (:func:`write_spec`);
(b) run ``wstest -m fuzzingclient -s spec.json`` with a time limit (:func:`run_wstest`);
(c) parse the report's ``index.json`` plus per-case JSON files (:func:`parse_report`);
(d) summarise which cases are not acceptable (:func:`summarise`, :func:`format_summary`).

A case is *acceptable* when both its ``behavior`` and its ``behaviorClose`` are ``OK``
or ``INFORMATIONAL``. Anything else (``NON-STRICT``, ``FAILED``, ``UNIMPLEMENTED``,
``WRONG CODE``, ``UNCLEAN``, ``FAILED BY CLIENT``) is a failure, and so is a case that
wstest announced but never reported (``MISSING``, e.g. because the server died).

Command line::

    python tests/autobahn/runner.py --url ws://127.0.0.1:9001/ --cases '1.*' '2.*' \\
        --out reports/autobahn

prints a summary (counts per behaviour and per section, failing cases, wall time) and
exits 0 when every case is acceptable, 1 when some are not, 2 when the run itself failed
(wstest missing, timed out or crashed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: Sections 1-10, 12 and 13 (section 11 does not exist; 8 currently holds no cases).
DEFAULT_CASES: tuple[str, ...] = tuple(f"{section}.*" for section in (*range(1, 11), 12, 13))

#: Behaviours that count as a pass, for ``behavior`` and ``behaviorClose`` alike.
ACCEPTABLE: frozenset[str] = frozenset({"OK", "INFORMATIONAL"})

#: Pseudo-behaviour for a case wstest planned but did not report.
MISSING = "MISSING"

#: What each (non-acceptable) behaviour means, for the summary's legend.
BEHAVIOR_MEANINGS: dict[str, str] = {
    "NON-STRICT": "tolerated but not what the RFC asks: invalid UTF-8 caught only at a frame "
    "or message end instead of fail-fast (6.4.x), or the connection failed before echoing "
    "the valid message sent just ahead of the bad frame (3.x, 4.x, 5.15)",
    "FAILED": "events matched no expected outcome, the wrong endpoint closed, or (section 7) "
    "a wrong close code",
    "UNIMPLEMENTED": "feature not negotiated: sections 12/13 need permessage-deflate",
    "WRONG CODE": "the server's close frame carried a code not in the expected list",
    "UNCLEAN": "a clean close was required: answer the client's close frame within 1 s "
    "(closeHandshakeTimeout) with a valid close frame, then drop TCP within 1 s "
    "(serverConnectionDropTimeout)",
    "FAILED BY CLIENT": "the client had to drop TCP itself; the server should have",
    MISSING: "wstest planned the case but never reported it (server gone? wstest crashed?)",
}

#: Agent name written into the spec; it keys ``index.json`` and prefixes report files.
DEFAULT_AGENT = "testee"

#: Default overall time limit for one wstest run, in seconds.
DEFAULT_TIMEOUT = 3600.0

_PLAN_LINE = re.compile(r"^Ok, will run (?P<count>\d+) test cases", re.MULTILINE)
_CASES_LINE = re.compile(r"^Cases = \[(?P<cases>.*)\]\s*$", re.MULTILINE)
_RUNNING_LINE = re.compile(r"^Running test case ID (?P<case>[\d.]+) ", re.MULTILINE)
_CONNECT_FAILED_LINE = re.compile(r"^Connection to .* failed .*$", re.MULTILINE)
_HTML_TAG = re.compile(r"<[^>]*>")


class AutobahnError(RuntimeError):
    """The wstest run itself failed: not installed, crashed, or produced no report."""


class WstestTimeout(AutobahnError):
    """wstest did not finish within its time limit (and was killed)."""


class NoCasesError(AutobahnError):
    """The case patterns (minus exclusions) select no case; wstest would wait forever."""


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one Autobahn case, from ``index.json`` and the case's own JSON file."""

    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: int = 0
    remote_close_code: int | None = None
    report_file: str | None = None
    description: str = ""
    expectation: str = ""
    result: str = ""
    result_close: str = ""

    @property
    def acceptable(self) -> bool:
        """Whether both behaviours are in :data:`ACCEPTABLE`."""
        return self.behavior in ACCEPTABLE and self.behavior_close in ACCEPTABLE

    @property
    def section(self) -> str:
        """Top-level section of the case, e.g. ``"6"`` for case ``6.4.3``."""
        return self.case_id.split(".", 1)[0]


@dataclass(frozen=True)
class WstestRun:
    """What one wstest process did."""

    returncode: int
    wall_time: float
    planned_cases: tuple[str, ...]
    log_path: Path
    connect_failures: tuple[str, ...] = ()


@dataclass
class Summary:
    """Aggregated results of one run; see :func:`summarise`."""

    results: list[CaseResult]
    failures: list[CaseResult]
    behavior_counts: Counter[str] = field(default_factory=Counter)
    behavior_close_counts: Counter[str] = field(default_factory=Counter)
    wall_time: float | None = None
    url: str | None = None
    report_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no case is unacceptable or missing."""
        return not self.failures


def case_sort_key(case_id: str) -> tuple[int, ...]:
    """Sort case ids numerically (``"9.10"`` after ``"9.9"``); unparsable ids go last."""
    try:
        return tuple(int(part) for part in case_id.split("."))
    except ValueError:
        return (sys.maxsize,)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translate an Autobahn case/agent pattern (``*`` wildcard) to an anchored regex."""
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")


def write_spec(
    path: Path,
    url: str,
    cases: Sequence[str] = DEFAULT_CASES,
    exclude_cases: Sequence[str] = (),
    *,
    outdir: Path,
    agent: str = DEFAULT_AGENT,
    options: Mapping[str, Any] | None = None,
    exclude_agent_cases: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Write a fuzzingclient spec for one server to *path* and return it.

    ``cases`` and ``exclude_cases`` take Autobahn case ids or patterns such as
    ``"6.*"`` (``*`` is a wildcard; ``.`` is literal). ``options`` are autobahn
    protocol options applied to every connection (wstest always sets
    ``failByDrop=False`` first, so failing the connection performs a closing handshake;
    pass e.g. ``{"failByDrop": True}`` to override). ``exclude_agent_cases`` maps agent
    patterns to case patterns that are skipped for matching agents (those cases connect
    and close straight away and are left out of the report).
    """
    spec: dict[str, Any] = {
        "outdir": str(outdir),
        "servers": [{"agent": agent, "url": url}],
        "cases": list(cases),
        "exclude-cases": list(exclude_cases),
        "exclude-agent-cases": {k: list(v) for k, v in (exclude_agent_cases or {}).items()},
    }
    if options:
        spec["options"] = dict(options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return spec


def find_wstest(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate the ``wstest`` executable.

    Order: *explicit*, ``$AUTOBAHN_WSTEST``, ``.autobahn-venv/bin/wstest`` in the repo
    root (where ``install.sh`` puts it), then ``wstest`` on ``PATH``.
    """
    candidates: list[str] = []
    if explicit:
        candidates.append(os.fspath(explicit))
    if os.environ.get("AUTOBAHN_WSTEST"):
        candidates.append(os.environ["AUTOBAHN_WSTEST"])
    repo_root = Path(__file__).resolve().parents[2]
    candidates.append(str(repo_root / ".autobahn-venv" / "bin" / "wstest"))
    on_path = shutil.which("wstest")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise AutobahnError(
        "wstest not found (tried: " + ", ".join(candidates) + "); "
        "run tests/autobahn/install.sh or pass --wstest"
    )


def _kill_process_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate *proc* and its process group, escalating to SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(text: str, lines: int = 20, width: int = 200) -> str:
    """Last *lines* lines of *text*, each cut to *width* characters."""
    return "\n".join(
        line if len(line) <= width else line[: width - 3] + "..."
        for line in text.splitlines()[-lines:]
    )


def run_wstest(
    spec_path: Path,
    *,
    wstest: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    log_path: Path | None = None,
) -> WstestRun:
    """Run ``wstest -m fuzzingclient -s spec_path`` and wait at most *timeout* seconds.

    wstest's output goes to *log_path* (default ``wstest.log`` beside the spec), the
    working directory is the spec's directory. On timeout the whole process group is
    killed and :class:`WstestTimeout` is raised naming the case that was running.
    A non-zero exit status is returned, not raised; the caller decides.
    """
    exe = find_wstest(wstest)
    spec_path = spec_path.resolve()
    log_path = (log_path or spec_path.with_name("wstest.log")).resolve()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A Python 3 PYTHONPATH/PYTHONHOME would break the Python 2.7 interpreter.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    command = [str(exe), "-m", "fuzzingclient", "-s", str(spec_path)]
    start = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=spec_path.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            returncode = _wait_for_wstest(proc, log_path, start + timeout)
        except subprocess.TimeoutExpired:
            _kill_process_group(proc)
            output = log_path.read_text(encoding="utf-8", errors="replace")
            running = _RUNNING_LINE.findall(output)
            where = f" while running case {running[-1]}" if running else ""
            raise WstestTimeout(
                f"wstest did not finish within {timeout:.0f} s{where}; killed. "
                f"Log: {log_path}\n{_tail(output)}"
            ) from None
        except BaseException:
            _kill_process_group(proc)
            raise
    wall_time = time.monotonic() - start
    output = log_path.read_text(encoding="utf-8", errors="replace")
    return WstestRun(
        returncode=returncode,
        wall_time=wall_time,
        planned_cases=parse_planned_cases(output),
        log_path=log_path,
        connect_failures=tuple(_CONNECT_FAILED_LINE.findall(output)),
    )


def _wait_for_wstest(proc: subprocess.Popen[bytes], log_path: Path, deadline: float) -> int:
    """Wait for *proc* until *deadline* (``time.monotonic()``), watching its log.

    wstest never exits when its case patterns match nothing (it waits for a
    connection that it never starts), so that situation is detected from the log and
    raised as :class:`NoCasesError` instead of running into the time limit.
    """
    checked_plan = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired(proc.args, 0)
        try:
            return proc.wait(timeout=min(0.5, remaining))
        except subprocess.TimeoutExpired:
            pass
        if not checked_plan:
            output = log_path.read_text(encoding="utf-8", errors="replace")
            match = _PLAN_LINE.search(output)
            if match:
                checked_plan = True
                if int(match.group("count")) == 0:
                    raise NoCasesError(
                        "the case patterns match no Autobahn case (wstest would hang); "
                        f"log: {log_path}"
                    )


def parse_planned_cases(output: str) -> tuple[str, ...]:
    """Case ids from wstest's ``Cases = ['1.1.1', ...]`` line (empty if absent)."""
    match = _CASES_LINE.search(output)
    if not match:
        return ()
    return tuple(re.findall(r"'([^']*)'", match.group("cases")))


def _clean_text(text: Any, limit: int = 500) -> str:
    """Strip HTML tags and collapse whitespace; truncate to *limit* characters."""
    if not isinstance(text, str):
        return "" if text is None else str(text)
    flat = " ".join(_HTML_TAG.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def parse_report(
    report_dir: Path,
    *,
    agent: str | None = None,
    details: str = "failures",
) -> list[CaseResult]:
    """Parse ``report_dir/index.json`` into :class:`CaseResult` objects, sorted by case id.

    *agent* selects the agent in the index; ``None`` accepts the only one present.
    *details* controls which per-case JSON files are read for description, expectation
    and result texts: ``"failures"`` (only unacceptable cases; the default, as the
    files can be large), ``"all"`` or ``"none"``.
    """
    index_path = report_dir / "index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutobahnError(f"no report index at {index_path}") from None
    if not isinstance(index, dict):
        raise AutobahnError(f"unexpected index.json structure in {index_path}")
    if agent is None:
        if len(index) > 1:
            raise AutobahnError(f"several agents in {index_path}: {sorted(index)}; pick one")
        cases: dict[str, Any] = next(iter(index.values()), {})
    else:
        cases = index.get(agent, {})
    results = []
    for case_id, entry in cases.items():
        result = CaseResult(
            case_id=case_id,
            behavior=str(entry.get("behavior")),
            behavior_close=str(entry.get("behaviorClose")),
            duration_ms=int(entry.get("duration") or 0),
            remote_close_code=entry.get("remoteCloseCode"),
            report_file=entry.get("reportfile"),
        )
        if details == "all" or (details == "failures" and not result.acceptable):
            result = _with_details(result, report_dir)
        results.append(result)
    results.sort(key=lambda r: case_sort_key(r.case_id))
    return results


def _with_details(result: CaseResult, report_dir: Path) -> CaseResult:
    """Return *result* completed with texts from its per-case JSON report, if readable."""
    if not result.report_file:
        return result
    try:
        data = json.loads((report_dir / result.report_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return replace(result, result=f"(could not read {result.report_file}: {exc})")
    result_close = _clean_text(data.get("resultClose"))
    reason = data.get("wasNotCleanReason")
    if reason:
        result_close = f"{result_close} ({_clean_text(reason)})" if result_close else reason
    return replace(
        result,
        description=_clean_text(data.get("description")),
        expectation=_clean_text(data.get("expectation")),
        result=_clean_text(data.get("result")),
        result_close=result_close,
    )


def summarise(
    results: Iterable[CaseResult],
    *,
    planned: Sequence[str] = (),
    wall_time: float | None = None,
    url: str | None = None,
    report_dir: Path | None = None,
) -> Summary:
    """Aggregate *results*; a case in *planned* but not in *results* counts as missing."""
    results = sorted(results, key=lambda r: case_sort_key(r.case_id))
    seen = {r.case_id for r in results}
    missing = [
        CaseResult(
            case_id=case_id,
            behavior=MISSING,
            behavior_close=MISSING,
            result="wstest planned this case but it is not in the report",
        )
        for case_id in planned
        if case_id not in seen
    ]
    all_results = sorted([*results, *missing], key=lambda r: case_sort_key(r.case_id))
    return Summary(
        results=all_results,
        failures=[r for r in all_results if not r.acceptable],
        behavior_counts=Counter(r.behavior for r in all_results),
        behavior_close_counts=Counter(r.behavior_close for r in all_results),
        wall_time=wall_time,
        url=url,
        report_dir=report_dir,
    )


def _counts_line(counts: Counter[str]) -> str:
    """``OK 300, NON-STRICT 4`` with OK and INFORMATIONAL first, then by count."""
    order = {"OK": 0, "INFORMATIONAL": 1}
    items = sorted(counts.items(), key=lambda kv: (order.get(kv[0], 2), -kv[1], kv[0]))
    return ", ".join(f"{name} {count}" for name, count in items) or "-"


def format_summary(summary: Summary, *, max_failures: int | None = None) -> str:
    """Render *summary* as text: counts, per-section table, failing cases, wall time."""
    lines: list[str] = []
    target = f" against {summary.url}" if summary.url else ""
    lines.append(f"Autobahn|Testsuite fuzzingclient{target}")
    total = len(summary.results)
    lines.append(
        f"{total} cases: {total - len(summary.failures)} acceptable, "
        f"{len(summary.failures)} not acceptable"
    )
    lines.append(f"  behavior:      {_counts_line(summary.behavior_counts)}")
    lines.append(f"  behaviorClose: {_counts_line(summary.behavior_close_counts)}")
    lines.append("")
    header = ("section", "cases", "pass", "fail", "case time s")
    lines.append("{:>7} {:>6} {:>6} {:>6} {:>12}  behavior/behaviorClose".format(*header))
    sections: dict[str, list[CaseResult]] = {}
    for result in summary.results:
        sections.setdefault(result.section, []).append(result)
    for section in sorted(sections, key=case_sort_key):
        group = sections[section]
        passed = sum(r.acceptable for r in group)
        seconds = sum(r.duration_ms for r in group) / 1000.0
        pairs = Counter(f"{r.behavior}/{r.behavior_close}" for r in group)
        lines.append(
            f"{section:>7} {len(group):>6} {passed:>6} {len(group) - passed:>6} "
            f"{seconds:>12.1f}  {_counts_line(pairs)}"
        )
    if summary.failures:
        lines.append("")
        lines.append(f"Not acceptable ({len(summary.failures)}):")
        shown = summary.failures if max_failures is None else summary.failures[:max_failures]
        for r in shown:
            code = "" if r.remote_close_code is None else f"  closeCode={r.remote_close_code}"
            lines.append(
                f"  {r.case_id:<9} behavior={r.behavior}  behaviorClose={r.behavior_close}{code}"
            )
            if r.description:
                lines.append(f"      description: {r.description}")
            if r.expectation:
                lines.append(f"      expectation: {r.expectation}")
            if r.result:
                lines.append(f"      result:      {r.result}")
            if r.result_close:
                lines.append(f"      resultClose: {r.result_close}")
        rest = summary.failures[len(shown) :]
        if rest:
            lines.append(f"  ... and {len(rest)} more: " + ", ".join(r.case_id for r in rest))
        present = {r.behavior for r in summary.failures} | {
            r.behavior_close for r in summary.failures
        }
        legend = [name for name in BEHAVIOR_MEANINGS if name in present]
        if legend:
            lines.append("")
            lines.append("Meaning:")
            lines.extend(f"  {name}: {BEHAVIOR_MEANINGS[name]}" for name in legend)
    for note in summary.notes:
        lines.append(f"note: {note}")
    if summary.report_dir is not None:
        lines.append(f"report: {summary.report_dir / 'index.html'}")
    if summary.wall_time is not None:
        lines.append(f"wall time: {summary.wall_time:.1f} s")
    return "\n".join(lines)


def run_suite(
    url: str,
    *,
    cases: Sequence[str] = DEFAULT_CASES,
    exclude_cases: Sequence[str] = (),
    out_dir: Path | None = None,
    wstest: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    options: Mapping[str, Any] | None = None,
    agent: str = DEFAULT_AGENT,
    exclude_agent_cases: Mapping[str, Sequence[str]] | None = None,
) -> Summary:
    """Write the spec, run wstest, parse the report and summarise, in one call.

    Files go to *out_dir* (a fresh temporary directory when ``None``):
    ``fuzzingclient.json``, ``wstest.log`` and the report in ``report/`` (removed
    before the run so a stale report can never be read).
    Raises :class:`AutobahnError` when wstest cannot run, crashes or writes no report.
    """
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="autobahn-"))
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    report_dir = out / "report"
    if report_dir.exists():
        shutil.rmtree(report_dir)
    spec_path = out / "fuzzingclient.json"
    write_spec(
        spec_path,
        url,
        cases,
        exclude_cases,
        outdir=report_dir,
        agent=agent,
        options=options,
        exclude_agent_cases=exclude_agent_cases,
    )
    run = run_wstest(spec_path, wstest=wstest, timeout=timeout)
    log_text = run.log_path.read_text(encoding="utf-8", errors="replace")
    if not (report_dir / "index.json").exists():
        raise AutobahnError(
            f"wstest exited with status {run.returncode} and wrote no report. "
            f"Log: {run.log_path}\n{_tail(log_text)}"
        )
    results = parse_report(report_dir, agent=agent)
    # Cases skipped through exclude-agent-cases are planned but never reported.
    skipped = [
        re.compile(r"|".join(_pattern_regex(c).pattern for c in case_patterns))
        for agent_pattern, case_patterns in (exclude_agent_cases or {}).items()
        if case_patterns and _pattern_regex(agent_pattern).match(agent)
    ]
    planned = [c for c in run.planned_cases if not any(p.match(c) for p in skipped)]
    summary = summarise(
        results,
        planned=planned,
        wall_time=run.wall_time,
        url=url,
        report_dir=report_dir,
    )
    if not run.planned_cases:
        summary.notes.append("wstest planned no cases: check the case patterns")
    summary.notes.extend(run.connect_failures)
    if run.returncode != 0:
        summary.notes.append(f"wstest exited with status {run.returncode}; see {run.log_path}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        description="Run the Autobahn|Testsuite fuzzingclient against a WebSocket echo server.",
    )
    parser.add_argument("--url", required=True, help="server URL, e.g. ws://127.0.0.1:9001/")
    parser.add_argument(
        "--cases",
        nargs="+",
        default=list(DEFAULT_CASES),
        metavar="PATTERN",
        help="case ids or patterns (default: sections 1-10, 12, 13)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="case ids or patterns to leave out",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory for spec, log and report (default: a new temp dir)",
    )
    parser.add_argument("--wstest", default=None, help="path to wstest (default: autodetect)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"time limit for the whole run in seconds (default: {DEFAULT_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='autobahn protocol option, e.g. failByDrop=true (repeatable); goes to "options"',
    )
    parser.add_argument("--agent", default=DEFAULT_AGENT, help="agent name used in the report")
    parser.add_argument(
        "--max-failures",
        type=int,
        default=None,
        help="list at most this many failing cases (default: all)",
    )
    args = parser.parse_args(argv)

    options: dict[str, Any] = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option expects NAME=JSON, got {item!r}")
        try:
            options[name] = json.loads(value)
        except ValueError:
            parser.error(f"--option {name}: value is not JSON: {value!r}")

    try:
        summary = run_suite(
            args.url,
            cases=args.cases,
            exclude_cases=args.exclude,
            out_dir=args.out,
            wstest=args.wstest,
            timeout=args.timeout,
            options=options,
            agent=args.agent,
        )
    except AutobahnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary, max_failures=args.max_failures))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
