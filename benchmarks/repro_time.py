"""Time the whole DVC pipeline (`dvc repro`, what `make repro` runs), stage by stage.

By default the script copies the files git lists into a temporary folder: tracked files, and
untracked ones that git does not ignore, as a fresh clone plus local edits would have them.
There it merges the chosen profile (profiles/NAME.yaml) over params.yaml and removes
reports/, dvc.lock, work/ and DVC's caches, so that every stage runs from scratch. Then it
runs `python -m dvc repro` in the copy with this interpreter's bin folder first on PATH, as
`make repro` does.

DVC prints `Running stage 'NAME':` before each stage it runs. A stage's time runs from that
line to the next stage's line, or to the end of `dvc repro` for the last stage, so it also
counts DVC's hashing and caching of the stage's outputs. The time before the first stage is
DVC's start-up. Stages DVC skips (`Stage 'NAME' didn't change, skipping`) count 0 s.

The result is a JSON file (machine, commit, profile, total and per-stage seconds), the raw
log of `dvc repro` next to it (same name, .log), and a Markdown table printed to stdout and
written to --markdown. Progress lines go to stderr.

Usage:
    .venv/bin/python benchmarks/repro_time.py [--profile tiny|full|paper|NAME] [--in-place]
        [--output FILE.json] [--markdown FILE.md] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from siamlib.params import load_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = "default"
"""Profile name that means params.yaml as it is, with no overrides."""
HEARTBEAT_S = 60.0
"""Seconds without a new stage after which a progress line repeats the running stage."""

RUNNING = re.compile(r"^Running stage '(?P<stage>[^']+)':$")
SKIPPED = re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping$")
CACHED = re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run, checking out outputs$")
FAILED = re.compile(r"failed to reproduce(?: stages:)? (?P<names>'.+?')(?::|$)")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Messages of DVC 3.67.1 (dvc/stage/run.py, dvc/stage/__init__.py, dvc/stage/cache.py and
# dvc/repo/reproduce.py), matched on whole lines so that a notebook printing
# the same words inside a longer line is not taken for a stage.
STAGE_EVENTS = (("ran", RUNNING), ("skipped", SKIPPED), ("cached", CACHED))
STATUS_NOTES = {"ran": "", "skipped": " (skipped)", "cached": " (restored from run cache)",
                "failed": " (failed)"}


@dataclass
class StageTiming:
    """One stage in the log of `dvc repro`.

    Attributes:
        stage: DVC's name of the stage, with `@item` for an instance of a foreach stage.
        status: ran, skipped (unchanged), cached (outputs restored from DVC's run cache) or
            failed.
        started: time.monotonic() when its line was read, in seconds.
        seconds: time from its line to the next stage's line or to the end of the run.
    """

    stage: str
    status: str
    started: float
    seconds: float = 0.0


@dataclass
class FamilyTiming:
    """The stages of one family (the part of a stage name before `@`) added together."""

    family: str
    stages: int
    seconds: float


class StageClock:
    """Turn the lines of `dvc repro`, read one by one with their times, into stage timings."""

    def __init__(self) -> None:
        self.timings: list[StageTiming] = []
        self._open: StageTiming | None = None

    def feed(self, timestamp: float, line: str) -> list[StageTiming]:
        """Read one line and return the stages it starts, skips or marks as failed.

        Args:
            timestamp: time.monotonic() when the line was read, in seconds.
            line: one line of output without its newline. Progress bars that redraw with a
                carriage return arrive as one line, so each part between carriage returns
                is read on its own.

        Returns:
            The timings this line added or changed, in the order of the log.
        """
        changed = []
        for segment in line.split("\r"):
            text = ANSI_ESCAPE.sub("", segment).strip()
            if not text:
                continue
            failure = FAILED.search(text)
            if failure:
                names = re.findall(r"'([^']+)'", failure["names"])
                changed.extend(self._mark_failed(timestamp, names))
                continue
            for status, pattern in STAGE_EVENTS:
                match = pattern.match(text)
                if match:
                    changed.append(self._start(timestamp, match["stage"], status))
                    break
        return changed

    @property
    def running_stage(self) -> StageTiming | None:
        """The stage whose time is still running: the last one that ran, unless a line ended it."""
        return self._open

    def finish(self, end: float) -> list[StageTiming]:
        """Close the running stage at `end` (time.monotonic(), seconds) and return all timings."""
        if self._open is not None:
            self._open.seconds = end - self._open.started
            self._open = None
        return self.timings

    def _start(self, timestamp: float, stage: str, status: str) -> StageTiming:
        # Any stage line ends the stage before it, a skipped one included.
        if self._open is not None:
            self._open.seconds = timestamp - self._open.started
            self._open = None
        timing = StageTiming(stage, status, timestamp)
        self.timings.append(timing)
        if status != "skipped":
            self._open = timing
        return timing

    def _mark_failed(self, timestamp: float, stages: list[str]) -> list[StageTiming]:
        marked = []
        for stage in stages:
            known = [timing for timing in self.timings if timing.stage == stage]
            if known:
                known[-1].status = "failed"
                marked.append(known[-1])
            else:
                # DVC can fail a stage before printing its line, e.g. on a missing dependency.
                timing = StageTiming(stage, "failed", timestamp)
                self.timings.append(timing)
                marked.append(timing)
        return marked


def parse_stage_timings(events: Iterable[tuple[float, str]], end: float) -> list[StageTiming]:
    """Return the stage timings in a log of `dvc repro`.

    Args:
        events: (time.monotonic() when read, line without its newline) for each line.
        end: time.monotonic() when `dvc repro` exited, in seconds.

    Returns:
        One timing per stage line, in the order of the log.
    """
    clock = StageClock()
    for timestamp, line in events:
        clock.feed(timestamp, line)
    return clock.finish(end)


def stage_family(stage: str) -> str:
    """Return the part of a stage name before `@` (`ablation@siam` -> `ablation`)."""
    return stage.split("@", 1)[0]


def group_by_family(timings: Iterable[StageTiming]) -> list[FamilyTiming]:
    """Add up the seconds of each stage family, slowest family first (ties by name)."""
    families: dict[str, FamilyTiming] = {}
    for timing in timings:
        name = stage_family(timing.stage)
        family = families.setdefault(name, FamilyTiming(name, 0, 0.0))
        family.stages += 1
        family.seconds += timing.seconds
    return sorted(families.values(), key=lambda family: (-family.seconds, family.family))


def format_duration(seconds: float) -> str:
    """Format seconds as `42.0 s`, `3 min 05 s` or `1 h 02 min 07 s`."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s"


def format_share(seconds: float, total: float) -> str:
    """Format `seconds` as a percentage of `total`, or `n/a` when the total is not positive."""
    if total <= 0:
        return "n/a"
    return f"{100 * seconds / total:.1f}%"


def format_markdown(result: dict) -> str:
    """Render a result of this script (the JSON it writes) as Markdown.

    The first table lists the stages in the order DVC ran them; the second adds up each stage
    family, slowest first. Shares are of the total wall time of `dvc repro`, start-up included.
    """
    machine = result["machine"]
    total = result["total_seconds"]
    cuda = f"CUDA on {machine['cuda_device']}" if machine["cuda_available"] else "no CUDA"
    commit = f"Commit {result['git_commit'][:12]}" if result["git_commit"] else "Commit unknown"
    if result["uncommitted_changes"]:
        commit += " with uncommitted changes"
    exact = f" ({total:.1f} s)" if total >= 60 else ""
    lines = [
        f"Machine: {machine['platform']}, {machine['processor_count']} CPUs, "
        f"Python {machine['python']}, torch {machine['torch']}, {cuda}, DVC {machine['dvc']}. "
        f"{commit}, profile {result['profile']}, started {result['started_utc']}.",
        "",
        f"Total: {format_duration(total)}{exact}, of which "
        f"{result['startup_seconds']:.1f} s before the first stage (DVC's start-up). "
        f"Command: `{result['command']}`, which ran `{result['dvc_command']}` "
        f"{'in the repository' if result['in_place'] else 'in a temporary copy of it'}.",
    ]
    if result["failed_stages"]:
        names = ", ".join(f"`{name}`" for name in result["failed_stages"])
        lines += ["", f"`dvc repro` failed (exit status {result['returncode']}) in {names}; "
                      f"the times below stop there. Log: `{result['log']}`."]
    elif result["returncode"] != 0:
        lines += ["", f"`dvc repro` failed (exit status {result['returncode']}). "
                      f"Log: `{result['log']}`."]

    lines += ["", "| stage | seconds | share of total |", "|---|---:|---:|"]
    for stage in result["stages"]:
        name = stage["stage"] + STATUS_NOTES[stage["status"]]
        share = format_share(stage["seconds"], total)
        lines.append(f"| {name} | {stage['seconds']:.1f} | {share} |")

    timings = [StageTiming(stage["stage"], stage["status"], 0.0, stage["seconds"])
               for stage in result["stages"]]
    lines += ["", "By stage family (the part of the stage name before `@`), slowest first:", "",
              "| family | stages | seconds | share of total |", "|---|---:|---:|---:|"]
    for family in group_by_family(timings):
        lines.append(f"| {family.family} | {family.stages} | {family.seconds:.1f} | "
                     f"{format_share(family.seconds, total)} |")
    return "\n".join(lines) + "\n"


def failure_message(result: dict) -> str:
    """Return the error message for a failed `dvc repro`: the stage and where the log is."""
    if result["failed_stages"]:
        where = "in stage " + ", ".join(f"'{name}'" for name in result["failed_stages"])
    elif result["stages"]:
        where = f"after stage '{result['stages'][-1]['stage']}' started"
    else:
        where = "before any stage started"
    return (f"error: dvc repro failed (exit status {result['returncode']}) {where}; "
            f"read the log: {result['log']}")


def git_output(arguments: list[str], cwd: Path) -> str:
    """Run git in `cwd` and return its stdout. Raise SystemExit with git's message if it fails."""
    completed = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"error: git {' '.join(arguments)} failed in {cwd}: "
                         f"{completed.stderr.strip()}")
    return completed.stdout


def copy_repository(source: Path, destination: Path) -> int:
    """Copy the files git lists in `source` to `destination`.

    These are the tracked files and the untracked ones that are not ignored. Files deleted in
    the work tree but still in the index are left out.

    Returns:
        The number of files copied.
    """
    listed = git_output(["ls-files", "--cached", "--others", "--exclude-standard", "-z"], source)
    copied = 0
    for name in filter(None, listed.split("\0")):
        path = source / name
        if not path.is_file():
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    return copied


def profile_names(repository: Path) -> list[str]:
    """Return the profiles a run can use: `default` and the stems of profiles/*.yaml."""
    stems = sorted(path.stem for path in (repository / "profiles").glob("*.yaml"))
    return [DEFAULT_PROFILE, *stems]


def apply_profile(repository: Path, profile: str) -> None:
    """Merge profiles/<profile>.yaml over params.yaml in `repository`.

    The profile `default` leaves params.yaml as it is.

    Raises:
        ValueError: the profile file does not exist or does not contain a mapping.
    """
    if profile == DEFAULT_PROFILE:
        return
    path = repository / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        raise ValueError(f"profile {profile!r} not found: no {path}; "
                         f"available: {', '.join(profile_names(repository))}")
    params_path = repository / "params.yaml"
    params = load_params(params_path, str(path))
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def reset_pipeline_state(repository: Path) -> None:
    """Remove what would let DVC skip or shorten a stage in `repository`.

    dvc.lock and reports/ (committed results) would make unchanged stages count as up to date.
    work/ contains the persisted outputs (work/clips, checkpoints, resume states) that a rerun
    reuses, and .dvc/cache contains DVC's run cache, from which it restores outputs without
    running a stage. .dvc/tmp contains DVC's index and locks. The copy made by copy_repository
    has none of work/ and .dvc/ caches, because git ignores them. Removing them anyway keeps
    this step right for any folder.
    """
    for name in ("reports", "dvc.lock", "work", ".dvc/cache", ".dvc/tmp"):
        path = repository / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def pipeline_env() -> dict[str, str]:
    """Return this process's environment set up as `make repro` sets it.

    Stage commands call `python -m papermill`, so this interpreter's bin folder goes first on
    PATH. The kernel python3 is looked up in this environment's share/jupyter first.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    jupyter = str(Path(sys.prefix) / "share" / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter, env.get("JUPYTER_PATH")]))
    return env


def machine_facts() -> dict:
    """Return the platform, CPU count, Python, torch and DVC versions and CUDA availability."""
    # Imported here because torch is slow to import and the functions above do not need it.
    import torch

    cuda_available = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "processor_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda_available,
        "cuda_device": torch.cuda.get_device_name(0) if cuda_available else None,
        "dvc": importlib.metadata.version("dvc"),
    }


def run_streaming(command: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                  on_line: Callable[[float, str], None],
                  on_idle: Callable[[float], None] | None = None,
                  idle_check_s: float = 1.0) -> tuple[int, float]:
    """Run `command`, pass each line of its stdout and stderr to `on_line` as it arrives.

    A reader thread reads the combined output line by line and stamps each line with
    time.monotonic() when it is read. The raw bytes go to `log_path` as they arrive, so the
    log is readable while the command runs and after it fails.

    Args:
        command: the program and its arguments.
        cwd: folder to run it in.
        env: its environment.
        log_path: file that receives the raw output.
        on_line: called with (time read, line decoded as UTF-8 without its newline).
        on_idle: called with time.monotonic() every `idle_check_s` seconds without output.
        idle_check_s: how often on_idle is called while no line arrives, in seconds.

    Returns:
        The exit status of the command and time.monotonic() when it exited.
    """
    lines: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def read() -> None:
        for raw in process.stdout:
            lines.put((time.monotonic(), raw))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with log_path.open("wb") as log:
            while True:
                try:
                    item = lines.get(timeout=idle_check_s)
                except queue.Empty:
                    if on_idle is not None:
                        on_idle(time.monotonic())
                    continue
                if item is None:
                    break
                timestamp, raw = item
                log.write(raw)
                log.flush()
                on_line(timestamp, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        returncode = process.wait()
    except BaseException as error:
        # Ctrl-C reaches DVC and its stage too (same process group), so they stop on their own.
        if not isinstance(error, KeyboardInterrupt):
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    return returncode, time.monotonic()


class ProgressPrinter:
    """Print each stage as it starts, and the running stage every HEARTBEAT_S, to stderr."""

    def __init__(self, clock: StageClock, start: float) -> None:
        self.clock = clock
        self.start = start
        self.last_print = start

    def line(self, timestamp: float, text: str) -> None:
        """Feed one line of `dvc repro` to the clock; print the stages it starts or skips."""
        for timing in self.clock.feed(timestamp, text):
            verb = {"ran": "running", "skipped": "skipped", "cached": "restoring",
                    "failed": "failed"}[timing.status]
            self._print(timestamp, f"{verb} {timing.stage}")

    def idle(self, now: float) -> None:
        """Print the stage still running when nothing was printed for HEARTBEAT_S."""
        if now - self.last_print < HEARTBEAT_S:
            return
        running = self.clock.running_stage
        if running is not None:
            since = format_duration(now - running.started)
            self._print(now, f"still in {running.stage} (for {since})")
        elif self.clock.timings:
            self._print(now, "dvc is between stages")
        else:
            self._print(now, "dvc is starting")

    def _print(self, timestamp: float, message: str) -> None:
        elapsed = int(timestamp - self.start)
        print(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)
        self.last_print = timestamp


def time_repro(repository: Path, dvc_arguments: list[str], log_path: Path) -> dict:
    """Run `python -m dvc` with `dvc_arguments` in `repository` and time its stages.

    Returns:
        The returncode, total and start-up seconds, and the stages (name, status, seconds
        and start in seconds after the run began) in the order DVC ran them.
    """
    clock = StageClock()
    start = time.monotonic()
    progress = ProgressPrinter(clock, start)
    returncode, end = run_streaming([sys.executable, "-m", "dvc", *dvc_arguments], repository,
                                    pipeline_env(), log_path, progress.line, progress.idle)
    timings = clock.finish(end)
    first = timings[0].started if timings else end
    return {
        "returncode": returncode,
        "total_seconds": end - start,
        "startup_seconds": first - start,
        "failed_stages": [timing.stage for timing in timings if timing.status == "failed"],
        "stages": [{"stage": timing.stage, "status": timing.status, "seconds": timing.seconds,
                    "start_seconds": timing.started - start} for timing in timings],
    }


def check_clean_work_tree(repository: Path) -> None:
    """Raise SystemExit unless `git status --porcelain` lists nothing in `repository`."""
    status = git_output(["status", "--porcelain"], repository).splitlines()
    if status:
        listed_changes = "\n".join(f"  {line}" for line in status[:20])
        more = f"\n  ... and {len(status) - 20} more" if len(status) > 20 else ""
        raise SystemExit(
            "error: --in-place needs a clean work tree, because `dvc repro --force` rewrites "
            "reports/ and dvc.lock; commit or stash these changes first, or run without "
            f"--in-place to time a temporary copy:\n{listed_changes}{more}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Progress goes to stderr; the Markdown table goes to stdout.")
    parser.add_argument(
        "--profile", default=DEFAULT_PROFILE,
        help="parameter profile merged over params.yaml in the copy: tiny, full, paper or the "
             "stem of any profiles/NAME.yaml (default: default, params.yaml as it is)")
    parser.add_argument(
        "--in-place", action="store_true",
        help="run `dvc repro --force` in this repository instead of a temporary copy. WARNING: "
             "this rewrites reports/ and dvc.lock, and needs a clean work tree (git status "
             "--porcelain empty). It reuses the persisted folders in work/ (clips, "
             "checkpoints, resume states), so stages that find finished results there run "
             "shorter than from scratch. Runs params.yaml as committed, so no --profile")
    parser.add_argument(
        "--output", type=Path,
        help="JSON result file; the log of dvc repro goes next to it with the suffix .log "
             "(default: repro_time_PROFILE.json in the system's temporary folder)")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown table to this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary copy after the run and print its path")
    arguments = parser.parse_args(argv)

    if arguments.in_place and arguments.profile != DEFAULT_PROFILE:
        parser.error("--profile applies to the temporary copy only; --in-place runs params.yaml "
                     "as committed. Drop one of the two options")
    if arguments.in_place and arguments.keep:
        parser.error("--keep applies to the temporary copy only; --in-place makes none")
    if arguments.profile not in profile_names(ROOT):
        parser.error(f"profile {arguments.profile!r} not found in {ROOT / 'profiles'}; "
                     f"available: {', '.join(profile_names(ROOT))}")
    if arguments.output is None:
        arguments.output = Path(tempfile.gettempdir()) / f"repro_time_{arguments.profile}.json"
    return arguments


def prepare_copy(profile: str) -> Path:
    """Copy the repository to a new temporary folder for a full `dvc repro` and return its path."""
    repository = Path(tempfile.mkdtemp(prefix="repro_time_"))
    count = copy_repository(ROOT, repository)
    apply_profile(repository, profile)
    reset_pipeline_state(repository)
    # DVC needs a git repository; a fresh one without commits is enough for `dvc repro`.
    git_output(["init", "-q"], repository)
    print(f"copied {count} files to {repository}, profile {profile}",
          file=sys.stderr, flush=True)
    return repository


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.in_place:
        check_clean_work_tree(ROOT)
    output = arguments.output.resolve()
    log_path = output.with_suffix(".log")
    output.parent.mkdir(parents=True, exist_ok=True)

    started_utc = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    facts = machine_facts()
    commit = git_output(["rev-parse", "HEAD"], ROOT).strip()
    uncommitted = bool(git_output(["status", "--porcelain"], ROOT).strip())
    dvc_arguments = ["repro", "--force"] if arguments.in_place else ["repro"]
    repository = ROOT if arguments.in_place else prepare_copy(arguments.profile)

    try:
        print(f"running python -m dvc {' '.join(dvc_arguments)} in {repository}, log: {log_path}",
              file=sys.stderr, flush=True)
        timing = time_repro(repository, dvc_arguments, log_path)
    finally:
        if repository != ROOT:
            if arguments.keep:
                print(f"kept the copy: {repository}", file=sys.stderr)
            else:
                shutil.rmtree(repository, ignore_errors=True)

    result = {
        "machine": facts,
        "git_commit": commit,
        "uncommitted_changes": uncommitted,
        "profile": arguments.profile,
        "in_place": arguments.in_place,
        "started_utc": started_utc,
        "command": shlex.join(["python", str(Path(__file__).resolve().relative_to(ROOT)),
                               *(sys.argv[1:] if argv is None else argv)]),
        "dvc_command": shlex.join(["python", "-m", "dvc", *dvc_arguments]),
        "log": str(log_path),
        **timing,
    }
    output.write_text(json.dumps(result, indent=2) + "\n")
    markdown = format_markdown(result)
    if arguments.markdown is not None:
        arguments.markdown.parent.mkdir(parents=True, exist_ok=True)
        arguments.markdown.write_text(markdown)
    print(markdown)
    print(f"wrote {output} and {log_path}", file=sys.stderr)
    if result["returncode"] != 0:
        raise SystemExit(failure_message(result))


if __name__ == "__main__":
    main()
