"""benchmarks/repro_time.py without DVC: stage timings from fake logs, Markdown, profiles."""

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    # benchmarks/ is not a package, so load the script from its path.
    path = ROOT / "benchmarks" / "repro_time.py"
    spec = importlib.util.spec_from_file_location("repro_time", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


repro_time = load_script()

# Lines as DVC 3.67.1 prints them, with a papermill progress bar redrawn by carriage returns.
FAKE_LOG = [
    (10.0, "Running stage 'synthetic':"),
    (10.1, "> mkdir -p reports/notebooks && python -m papermill -k python3 --log-output ..."),
    (11.0, "Executing:   0%|          | 0/12 [00:00<?, ?cell/s]\rExecuting:  50%|#####     | 6/12"
           "\rExecuting: 100%|##########| 12/12"),
    (14.0, "Generating lock file 'dvc.lock'"),
    (14.0, "Updating lock file 'dvc.lock'"),
    (14.0, ""),
    (15.0, "Stage 'data' didn't change, skipping"),
    (15.5, "Running stage 'ablation@siam':"),
    (20.0, "Running stage 'ablation@temporal_mean':"),
    (26.0, "Running stage 'report':"),
    (29.0, "Use `dvc push` to send your updates to remote storage."),
]


def as_tuples(timings):
    return [(timing.stage, timing.status, round(timing.seconds, 6)) for timing in timings]


def test_parse_times_each_stage():
    timings = repro_time.parse_stage_timings(FAKE_LOG, end=30.0)
    assert as_tuples(timings) == [
        ("synthetic", "ran", 5.0),          # until the skipped stage's line
        ("data", "skipped", 0.0),
        ("ablation@siam", "ran", 4.5),
        ("ablation@temporal_mean", "ran", 6.0),
        ("report", "ran", 4.0),             # the last stage runs to the end
    ]
    assert [timing.started for timing in timings] == [10.0, 15.0, 15.5, 20.0, 26.0]


def test_parse_stage_line_after_carriage_return():
    events = [
        (0.0, "Running stage 'preprocess':"),
        (3.0, "clips:  98%|#########8| 49/50\rclips: 100%|##########| 50/50"
              "\rRunning stage 'train':"),
        (4.0, "epoch 1\r"),
    ]
    timings = repro_time.parse_stage_timings(events, end=9.0)
    assert as_tuples(timings) == [("preprocess", "ran", 3.0), ("train", "ran", 6.0)]


def test_parse_ignores_stage_words_inside_output():
    events = [
        (0.0, "Running stage 'train':"),
        (1.0, "print(\"Running stage 'fake':\")"),
        (2.0, "note: Stage 'fake' didn't change, skipping as a quote"),
        (3.0, "\x1b[32mRunning stage 'evaluate':\x1b[0m"),  # colour codes are stripped
    ]
    timings = repro_time.parse_stage_timings(events, end=5.0)
    assert as_tuples(timings) == [("train", "ran", 3.0), ("evaluate", "ran", 2.0)]


def test_parse_empty_log():
    assert repro_time.parse_stage_timings([], end=1.0) == []
    up_to_date = [(0.5, "Data and pipelines are up to date.")]
    assert repro_time.parse_stage_timings(up_to_date, end=1.0) == []


def test_parse_marks_failed_stage():
    events = [
        (0.0, "Running stage 'a':"),
        (2.0, "Updating lock file 'dvc.lock'"),
        (2.5, "Running stage 'c':"),
        (3.0, "> exit 3"),
        (3.5, "ERROR: failed to reproduce 'c': failed to run: exit 3, exited with 3"),
    ]
    timings = repro_time.parse_stage_timings(events, end=4.0)
    assert as_tuples(timings) == [("a", "ran", 2.5), ("c", "failed", 1.5)]


def test_parse_failure_before_stage_line():
    # DVC checks dependencies before it prints the stage's line.
    events = [
        (0.0, "Running stage 'synthetic':"),
        (5.0, "ERROR: failed to reproduce 'data': [Errno 2] No such file or directory: 'x'"),
    ]
    timings = repro_time.parse_stage_timings(events, end=6.0)
    assert as_tuples(timings) == [("synthetic", "ran", 6.0), ("data", "failed", 0.0)]


def test_parse_several_failed_stages():
    events = [(0.0, "Running stage 'a':"), (1.0, "Running stage 'b@x':"),
              (2.0, "ERROR: failed to reproduce stages: 'a', 'b@x' and 'c'")]
    timings = repro_time.parse_stage_timings(events, end=3.0)
    assert [timing.status for timing in timings] == ["failed", "failed", "failed"]
    assert [timing.stage for timing in timings] == ["a", "b@x", "c"]


def test_parse_stage_restored_from_run_cache():
    events = [(0.0, "Stage 'b@one' is cached - skipping run, checking out outputs"),
              (0.5, "Running stage 'c':")]
    timings = repro_time.parse_stage_timings(events, end=2.0)
    assert as_tuples(timings) == [("b@one", "cached", 0.5), ("c", "ran", 1.5)]


def test_clock_feed_returns_changed_stages():
    clock = repro_time.StageClock()
    assert clock.feed(0.0, "> a command") == []
    started = clock.feed(1.0, "Running stage 'train':")
    assert [(timing.stage, timing.status) for timing in started] == [("train", "ran")]
    assert clock.running_stage is started[0]
    skipped = clock.feed(1.5, "Stage 'evaluate' didn't change, skipping")
    assert [(timing.stage, timing.status) for timing in skipped] == [("evaluate", "skipped")]
    assert clock.running_stage is None
    failed = clock.feed(2.0, "ERROR: failed to reproduce 'train': failed to run: x, exited with 1")
    assert [(timing.stage, timing.status) for timing in failed] == [("train", "failed")]


def test_group_by_family_sorts_slowest_first():
    timings = repro_time.parse_stage_timings(FAKE_LOG, end=30.0)
    families = repro_time.group_by_family(timings)
    assert [(family.family, family.stages, family.seconds) for family in families] == [
        ("ablation", 2, 10.5), ("synthetic", 1, 5.0), ("report", 1, 4.0), ("data", 1, 0.0)]


def test_group_by_family_breaks_ties_by_name():
    timings = [repro_time.StageTiming("b", "ran", 0.0, 1.0),
               repro_time.StageTiming("a", "ran", 0.0, 1.0)]
    assert [family.family for family in repro_time.group_by_family(timings)] == ["a", "b"]


def test_stage_family():
    assert repro_time.stage_family("ablation@siam") == "ablation"
    assert repro_time.stage_family("baseline@svr_dynamics") == "baseline"
    assert repro_time.stage_family("report") == "report"


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0.0 s"),
    (42.04, "42.0 s"),
    (59.96, "1 min 00 s"),
    (185.0, "3 min 05 s"),
    (2472.4, "41 min 12 s"),
    (3727.0, "1 h 02 min 07 s"),
])
def test_format_duration(seconds, text):
    assert repro_time.format_duration(seconds) == text


def fake_result(returncode=0, failed=()):
    timings = repro_time.parse_stage_timings(FAKE_LOG, end=30.0)
    for timing in timings:
        if timing.stage in failed:
            timing.status = "failed"
    return {
        "machine": {"platform": "Linux-x86_64", "processor_count": 2, "python": "3.11.7",
                    "torch": "2.14.1", "cuda_available": False, "cuda_device": None,
                    "dvc": "3.67.1"},
        "git_commit": "0123456789abcdef0123",
        "uncommitted_changes": True,
        "profile": "tiny",
        "in_place": False,
        "started_utc": "2025-01-01T00:00:00+00:00",
        "command": "python benchmarks/repro_time.py --profile tiny",
        "dvc_command": "python -m dvc repro",
        "log": "/tmp/repro_time_tiny.log",
        "returncode": returncode,
        "total_seconds": 100.0,
        "startup_seconds": 3.0,
        "failed_stages": list(failed),
        "stages": [{"stage": timing.stage, "status": timing.status, "seconds": timing.seconds,
                    "start_seconds": timing.started} for timing in timings],
    }


def test_markdown_stage_table_in_pipeline_order():
    lines = repro_time.format_markdown(fake_result()).splitlines()
    start = lines.index("| stage | seconds | share of total |")
    assert lines[start + 1] == "|---|---:|---:|"
    assert lines[start + 2:start + 7] == [
        "| synthetic | 5.0 | 5.0% |",
        "| data (skipped) | 0.0 | 0.0% |",
        "| ablation@siam | 4.5 | 4.5% |",
        "| ablation@temporal_mean | 6.0 | 6.0% |",
        "| report | 4.0 | 4.0% |",
    ]


def test_markdown_family_table_slowest_first():
    lines = repro_time.format_markdown(fake_result()).splitlines()
    start = lines.index("| family | stages | seconds | share of total |")
    assert lines[start + 2:start + 6] == [
        "| ablation | 2 | 10.5 | 10.5% |",
        "| synthetic | 1 | 5.0 | 5.0% |",
        "| report | 1 | 4.0 | 4.0% |",
        "| data | 1 | 0.0 | 0.0% |",
    ]


def test_markdown_total_and_command():
    text = repro_time.format_markdown(fake_result())
    assert "Total: 1 min 40 s (100.0 s), of which 3.0 s before the first stage" in text
    assert "`python benchmarks/repro_time.py --profile tiny`" in text
    assert "`python -m dvc repro` in a temporary copy" in text
    assert "Commit 0123456789ab with uncommitted changes, profile tiny" in text
    assert "2 CPUs" in text
    assert "failed" not in text


def test_markdown_names_failed_stage():
    text = repro_time.format_markdown(fake_result(returncode=255, failed=("report",)))
    assert "| report (failed) | 4.0 | 4.0% |" in text
    assert "`dvc repro` failed (exit status 255) in `report`" in text
    assert "/tmp/repro_time_tiny.log" in text


def test_failure_message():
    message = repro_time.failure_message(fake_result(returncode=255, failed=("report",)))
    assert "in stage 'report'" in message
    assert "exit status 255" in message
    assert message.endswith("/tmp/repro_time_tiny.log")
    unnamed = fake_result(returncode=1)
    assert "after stage 'report' started" in repro_time.failure_message(unnamed)
    unnamed["stages"] = []
    assert "before any stage started" in repro_time.failure_message(unnamed)


def write_repository(folder: Path) -> None:
    (folder / "profiles").mkdir()
    params = {"seed": 0, "splits": {"num_folds": 5, "validation_fraction": 0.2}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (folder / "profiles" / "small.yaml").write_text("splits:\n  num_folds: 2\n")


def test_apply_profile_merges_over_params(tmp_path):
    write_repository(tmp_path)
    repro_time.apply_profile(tmp_path, "small")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params == {"seed": 0, "splits": {"num_folds": 2, "validation_fraction": 0.2}}


def test_apply_default_profile_changes_nothing(tmp_path):
    write_repository(tmp_path)
    before = (tmp_path / "params.yaml").read_bytes()
    repro_time.apply_profile(tmp_path, "default")
    assert (tmp_path / "params.yaml").read_bytes() == before


def test_apply_missing_profile_lists_available(tmp_path):
    write_repository(tmp_path)
    with pytest.raises(ValueError, match=r"'huge' not found.*available: default, small"):
        repro_time.apply_profile(tmp_path, "huge")


def test_tiny_profile_of_this_repository(tmp_path):
    (tmp_path / "profiles").mkdir()
    for name in ("params.yaml", "profiles/tiny.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    repro_time.apply_profile(tmp_path, "tiny")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    tiny = yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text())
    assert params["splits"]["num_folds"] == tiny["splits"]["num_folds"]
    assert params["ablation"]["run"] == tiny["ablation"]["run"]
    assert params["seed"] == yaml.safe_load((ROOT / "params.yaml").read_text())["seed"]


def test_reset_pipeline_state_removes_results(tmp_path):
    for folder in ("reports/figures", "work/clips", ".dvc/cache/runs", ".dvc/tmp"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / ".dvc" / "config").write_text("[core]\n")
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    repro_time.reset_pipeline_state(tmp_path)
    for name in ("reports", "work", "dvc.lock", ".dvc/cache", ".dvc/tmp"):
        assert not (tmp_path / name).exists(), name
    assert (tmp_path / ".dvc" / "config").is_file()
    assert (tmp_path / "params.yaml").is_file()


def git(folder: Path, *arguments: str) -> None:
    subprocess.run(["git", *arguments], cwd=folder, check=True, capture_output=True)


def test_copy_repository_skips_ignored_files(tmp_path):
    source, destination = tmp_path / "source", tmp_path / "copy"
    (source / "work").mkdir(parents=True)
    destination.mkdir()
    git(source, "init", "-q")
    (source / ".gitignore").write_text("/work/\n")
    (source / "tracked.txt").write_text("tracked")
    (source / "deleted.txt").write_text("deleted")
    git(source, "add", ".gitignore", "tracked.txt", "deleted.txt")
    (source / "deleted.txt").unlink()
    (source / "untracked.txt").write_text("untracked")
    (source / "work" / "ignored.txt").write_text("ignored")

    assert repro_time.copy_repository(source, destination) == 3
    files = [path for path in destination.rglob("*") if path.is_file()]
    copied = sorted(str(path.relative_to(destination)) for path in files)
    assert copied == [".gitignore", "tracked.txt", "untracked.txt"]


def test_in_place_rejects_dirty_work_tree(tmp_path):
    git(tmp_path, "init", "-q")
    repro_time.check_clean_work_tree(tmp_path)  # nothing to commit: accepted
    (tmp_path / "notes.txt").write_text("draft")
    with pytest.raises(SystemExit, match=r"--in-place needs a clean work tree(.|\n)*notes\.txt"):
        repro_time.check_clean_work_tree(tmp_path)


def test_arguments_reject_profile_with_in_place(capsys):
    with pytest.raises(SystemExit) as raised:
        repro_time.parse_arguments(["--in-place", "--profile", "tiny"])
    assert raised.value.code == 2
    assert "--profile applies to the temporary copy only" in capsys.readouterr().err


def test_arguments_reject_unknown_profile(capsys):
    with pytest.raises(SystemExit) as raised:
        repro_time.parse_arguments(["--profile", "no_such_profile"])
    assert raised.value.code == 2
    assert "'no_such_profile' not found" in capsys.readouterr().err


def test_arguments_default_output():
    arguments = repro_time.parse_arguments(["--profile", "tiny"])
    assert arguments.output.name == "repro_time_tiny.json"
    assert not arguments.in_place


# Prints DVC-like lines with pauses, a progress bar on stderr, then fails like a stage.
FAKE_DVC = textwrap.dedent("""
    import sys, time
    print("Running stage 'a':", flush=True)
    for percent in (0, 50, 100):
        print(f"{percent}%", end="\\r", file=sys.stderr, flush=True)
    print("done", file=sys.stderr, flush=True)
    time.sleep(0.3)
    print("Running stage 'b':", flush=True)
    time.sleep(0.3)
    print("ERROR: failed to reproduce 'b': failed to run: exit 3, exited with 3",
          file=sys.stderr, flush=True)
    sys.exit(3)
""")


def test_run_streaming_times_a_fake_dvc(tmp_path):
    clock = repro_time.StageClock()
    log = tmp_path / "run.log"
    returncode, end = repro_time.run_streaming([sys.executable, "-c", FAKE_DVC], tmp_path, {},
                                               log, clock.feed)
    timings = clock.finish(end)
    assert returncode == 3
    assert [(timing.stage, timing.status) for timing in timings] == [("a", "ran"), ("b", "failed")]
    # Each stage sleeps 0.3 s; a busy machine can delay reading one line by a little.
    assert 0.15 < timings[0].seconds < 5
    assert 0.15 < timings[1].seconds < 5
    raw = log.read_bytes()  # read_text would turn each carriage return into a newline
    assert b"0%\r50%\r100%\rdone\n" in raw
    assert raw.endswith(b"exited with 3\n")
