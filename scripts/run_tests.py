#!/usr/bin/env python3
"""Runs every test of a layercache build directory and counts test cases.

Used by scripts/test. Runs, N at a time:
  * each Boost.Test executable registered with meson (suite 'boost'): its test cases are read
    from its XML report; a binary that crashes, hangs or exits early counts every case that
    did not pass as failed (at least one);
  * each other meson test (suite not 'boost'): one case, passed when it exits as expected;
  * each --case NAME=COMMAND: one case, a bash command run from the repository root, passed
    when it exits 0 (the consumer builds, the header and docs checks).
The output of everything that fails is printed, and the last line is "N passed, N failed".
Python's standard library only: meson itself runs on this python3.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LOG_LINES = 400  # of a failing case's output, printed to the log


class Outcome:
    """What one executable or command contributed: counts, names of failures, output."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []  # names of failed cases, or reasons
        self.output = ""
        self.seconds = 0.0
        self.summary_line = False  # print the last output line even on success


def run_process(cmd, cwd, env, timeout, shell=False):
    """Runs cmd in its own process group; returns (exit code or None on timeout, output)."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, shell=shell,
                                executable="/bin/bash" if shell else None)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        log.seek(0)
        return code, log.read().decode("utf-8", "replace")


def listed_cases(exe, cwd, env):
    """Number of enabled test cases (leaves of --list_content), or None when unknown."""
    try:
        out = subprocess.run([exe, "--list_content"], cwd=cwd, env=env, capture_output=True,
                             text=True, errors="replace", timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    if out.returncode != 0 or not lines:
        return None
    depth = [len(l) - len(l.lstrip(" ")) for l in lines]
    count = 0
    for i, line in enumerate(lines):
        is_suite = i + 1 < len(lines) and depth[i + 1] > depth[i]
        if not is_suite and line.rstrip().endswith("*"):
            count += 1
    return count


def case_results(report_path):
    """[(path, result)] of every test case in a Boost.Test XML report, or None if unusable."""
    try:
        root = ET.parse(report_path).getroot()
    except (OSError, ET.ParseError):
        return None
    results = []

    def walk(node, prefix):
        for child in node:
            name = child.get("name", "?")
            path = f"{prefix}/{name}" if prefix else name
            if child.tag == "TestCase":
                results.append((path, child.get("result", "?")))
            elif child.tag == "TestSuite":
                walk(child, path if node.tag == "TestSuite" else "")

    walk(root, "")
    return results


def run_boost(test, build_dir):
    o = Outcome(test["name"])
    exe = test["cmd"][0]
    cwd = test.get("workdir") or build_dir
    env = test_env(test)
    expected = listed_cases(exe, cwd, env)
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.xml")
        cmd = test["cmd"] + ["--report_format=XML", "--report_level=detailed",
                             f"--report_sink={report}", "--color_output=no"]
        code, o.output = run_process(cmd, cwd, env, test.get("timeout") or None)
        results = case_results(report)
    if results is None:
        results = []
    for path, result in results:
        if result == "passed":
            o.passed += 1
        elif result == "skipped":
            o.skipped += 1
        else:
            o.failed += 1
            o.failures.append(f"{path} ({result})")
    missing = (expected or 0) - len(results)
    if missing > 0:
        o.failed += missing
        o.failures.append(f"{missing} case(s) that never reported")
    if code != 0 and o.failed == 0:
        o.failed = 1
        o.failures.append(describe_exit(code))
    elif code != 0:
        o.failures.append(describe_exit(code))
    return o


def run_plain(test, build_dir):
    o = Outcome(test["name"])
    code, o.output = run_process(test["cmd"], test.get("workdir") or build_dir, test_env(test),
                                 test.get("timeout") or None)
    # Exit status 0 passes. (Meson 1.0's introspection does not report should_fail.)
    if code == 0:
        o.passed = 1
    else:
        o.failed = 1
        o.failures.append(describe_exit(code))
    return o


def run_command(name, command, timeout):
    o = Outcome(name)
    env = dict(os.environ)
    code, o.output = run_process(command, ROOT, env, timeout, shell=True)
    o.summary_line = True
    if code == 0:
        o.passed = 1
    else:
        o.failed = 1
        o.failures.append(describe_exit(code))
    return o


def describe_exit(code):
    if code is None:
        return "timed out"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit status {code}"


def test_env(test):
    env = dict(os.environ)
    # N tests share N cores: one BLAS thread each unless the caller says otherwise.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(test.get("env") or {})
    return env


def up_to_date(build_dir, exe):
    """True when ninja has nothing left to do for exe (it built, and is not stale)."""
    target = os.path.relpath(exe, build_dir)
    if target.startswith(".."):
        return True  # a program from outside the build (find_program): nothing to build
    out = subprocess.run(["ninja", "-C", build_dir, "-n", target], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL)
    return out.returncode == 0 and "no work to do" in out.stdout


def tail(text, n):
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= n:
        return lines
    return [f"... ({len(lines) - n} earlier lines cut)"] + lines[-n:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--build-log", help="log of a build that failed: counts as one failure")
    parser.add_argument("--case", action="append", default=[], metavar="NAME=COMMAND")
    parser.add_argument("--case-timeout", type=int, default=900)
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    start = time.monotonic()

    tests = json.loads(subprocess.run(["meson", "introspect", "--tests", build_dir],
                                      capture_output=True, text=True, check=True).stdout)
    early = []  # outcomes known before running anything (build failures)
    jobs = []  # (name, function)
    for spec in args.case:
        name, _, command = spec.partition("=")
        jobs.append((name, lambda n=name, c=command: run_command(n, c, args.case_timeout)))
    for test in tests:
        suites = [s.split(":")[-1] for s in test.get("suite", [])]
        runner = run_boost if "boost" in suites else run_plain
        if args.build_log and not up_to_date(build_dir, test["cmd"][0]):
            o = Outcome(test["name"])
            o.failed = 1
            o.failures.append("did not build (see the build errors above)")
            early.append(o)
            continue
        jobs.append((test["name"], lambda t=test, r=runner: r(t, build_dir)))

    if args.build_log:
        o = Outcome("build")
        o.failed = 1
        o.failures.append("ninja failed")
        with open(args.build_log, encoding="utf-8", errors="replace") as f:
            o.output = "".join(l for l in f if "FAILED" in l or "error" in l or "Error" in l)
        early.insert(0, o)

    outcomes = []
    lock = threading.Lock()
    total = len(jobs) + len(early)

    def report(o):
        with lock:
            outcomes.append(o)
            status = "FAIL" if o.failed else "PASS"
            counts = f"{o.passed} passed, {o.failed} failed"
            if o.skipped:
                counts += f", {o.skipped} skipped"
            print(f"[{len(outcomes):2d}/{total}] {status} {o.name}: {counts} "
                  f"({o.seconds:.1f} s)", flush=True)
            if not o.failed and o.summary_line and o.output.strip():
                print(f"    {o.output.strip().splitlines()[-1]}")
            if o.failed:
                for f in o.failures:
                    print(f"    failed: {f}")
                if o.output.strip():
                    print(f"    ---- output of {o.name} ----")
                    for line in tail(o.output, MAX_LOG_LINES):
                        print(f"    {line}")
                    print(f"    ---- end of {o.name} ----", flush=True)

    for o in early:
        report(o)

    def timed(name, fn):
        t0 = time.monotonic()
        try:
            o = fn()
        except Exception as e:  # a runner bug must still count as a failure
            o = Outcome(name)
            o.failed = 1
            o.failures.append(f"runner error: {e!r}")
        o.seconds = time.monotonic() - t0
        report(o)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, fn in jobs:
            pool.submit(timed, name, fn)

    passed = sum(o.passed for o in outcomes)
    failed = sum(o.failed for o in outcomes)
    skipped = sum(o.skipped for o in outcomes)
    failing = [o.name for o in outcomes if o.failed]
    print(f"\n{len(outcomes)} executables and checks in {time.monotonic() - start:.0f} s"
          + (f"; failing: {', '.join(failing)}" if failing else "")
          + (f"; {skipped} test cases skipped" if skipped else ""))
    if passed + failed == 0:
        print("no test ran")
        failed = 1
    print(f"{passed} passed, {failed} failed")  # always the last line, in this form
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
