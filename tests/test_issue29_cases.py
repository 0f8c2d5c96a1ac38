"""Issue 29's listed cases that no other test names: each bad input or I/O fault is exit 2 and one line, with no
output file left behind; the fsync order of atomic writes. (Cases tested elsewhere: see the issue's audit.)"""

from __future__ import annotations

import copy
import csv
import errno
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprof.data import shipped_dir
from edgeprof.errors import EdgeprofError
from edgeprof.files import write_text_atomic
from edgeprof.inversion.report import PROVENANCE
from edgeprof.rl.hc_mappo_l import make_config, parse_hyperparameters

SIMULATE = ("simulate", "--scenario", "small", "--set", "services.models=['lenet7']", "--slots", "2")


def _refused(result, message: str, *absent: Path) -> None:
    """Exit 2, exactly one `edgeprof: error:` line matching `message`, nothing on stdout, no output file."""
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and lines[0].startswith("edgeprof: error: "), result.err
    assert re.search(message, lines[0]), lines[0]
    assert result.out == ""
    for path in absent:
        assert not path.exists(), path


def _lenet7() -> dict:
    return json.loads((shipped_dir() / "lenet7.json").read_text())


def _profile(tmp_path: Path, name: str, change) -> Path:
    doc = copy.deepcopy(_lenet7())
    change(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _ssim(value):
    return lambda doc: doc["partition_points"][1]["leakage"].__setitem__("ssim", value)


def _garbage(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(range(128, 256)) * 4)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_ssim(1.7), r"\$\.partition_points\[1\]\.leakage\.ssim: 1\.7 is greater than the maximum of 1"),
        (_ssim(-0.4), r"\$\.partition_points\[1\]\.leakage\.ssim: -0\.4 is less than the minimum of 0"),
        (lambda doc: doc["partition_points"][1].__setitem__("device_flops", 10**400),
         r"\$\.partition_points\[1\]\.device_flops: an integer of 401 digits is greater than the maximum of "
         r"9223372036854775807$"),
    ],
)
def test_profiles_out_of_range_are_refused_by_validate_split_and_simulate(run_cli, tmp_path, change, message):
    bad = _profile(tmp_path, "bad.json", change)
    _refused(run_cli("validate", bad), message)
    out = tmp_path / "out.json"
    _refused(run_cli("split", bad, bad, "--uplink", "20Mbps", "--objective", "privacy", "-o", out), message, out)
    _refused(run_cli(*SIMULATE, "--set", f'services.profiles={{lenet7 = "{bad}"}}', "-o", out), message, out)


@pytest.mark.parametrize(("token", "field"), [("NaN", "upload_bytes"), ("Infinity", "device_flops")])
def test_nan_and_infinity_in_a_profile_are_not_json(run_cli, tmp_path, token, field):
    doc = _lenet7()
    doc["partition_points"][1][field] = "__TOKEN__"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc).replace('"__TOKEN__"', token))
    _refused(run_cli("validate", bad), rf"bad\.json: not valid JSON \({token} is not a JSON number\)")
    out = tmp_path / "sim.json"
    _refused(run_cli(*SIMULATE, "--set", f'services.profiles={{lenet7 = "{bad}"}}', "-o", out), "NaN|Infinity", out)


def test_split_by_privacy_never_picks_an_ssim_below_zero(run_cli, tmp_path):
    bad = _profile(tmp_path, "bad.json", _ssim(-3))
    out = tmp_path / "advice.json"
    _refused(run_cli("split", bad, bad, "--uplink", "20Mbps", "--objective", "privacy", "-o", out),
             r"leakage\.ssim: -3 is less than the minimum of 0", out)


def test_a_profile_of_another_model_under_services_profiles_is_refused(run_cli, tmp_path):
    other = tmp_path / "lenet12.json"
    other.write_text((shipped_dir() / "lenet12.json").read_text())
    _refused(run_cli(*SIMULATE, "--set", f'services.profiles={{lenet7 = "{other}"}}'),
             r"the profile given for lenet7 \(.*lenet12\.json\) profiles 'lenet12': give lenet7's profile or rename")


@pytest.mark.slow  # profiles lenet7: seconds
def test_a_leakage_table_with_nan_writes_no_profile(run_cli, tmp_path):
    doc = _lenet7()
    table = tmp_path / "leakage.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "input_size", "z", "after", "ssim_mean", "psnr_mean", "baseline_ssim", *PROVENANCE])
        for point in doc["partition_points"]:
            writer.writerow(["lenet7", 32, point["z"], point["after"] or "", "nan", "", "", *[""] * len(PROVENANCE)])
    out = tmp_path / "p.json"
    _refused(run_cli("profile", "lenet7", "--leakage", table, "-o", out),
             r"leakage\.csv, line 2: ssim_mean is nan: the table is damaged", out)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("clip_coef=-1", "clip_coef must be > 0, got -1.0"),
        ("policy.user_hidden=0", "policy.user_hidden must be >= 1, got 0"),
        ("gamma=5", "gamma must be >= 0, <= 1, got 5.0"),
        ("learning_rate=nan", "learning_rate must be a finite number, got nan"),
        ("multiplier_max=-1", "multiplier_max must be >= 0.01, got -1.0"),
    ],
)
def test_out_of_range_hyperparameters_are_refused_before_a_run_folder_exists(run_cli, tmp_path, pair, message):
    with pytest.raises(EdgeprofError, match=re.escape(message)):
        make_config("hc-mappo-l", **parse_hyperparameters([pair]))
    rundir = tmp_path / "run"
    _refused(run_cli("train", "hc-mappo-l", "--scenario", "small", "--hparam", pair, "-o", rundir),
             re.escape(message), rundir)


def _non_utf8_cases(tmp_path: Path) -> list[tuple[list, str]]:
    profile = _garbage(tmp_path, "garbage.json")
    scenario = _garbage(tmp_path, "garbage.toml")
    rundir = tmp_path / "run"
    rundir.mkdir()
    _garbage(rundir, "config.json")
    _garbage(rundir, "log.csv")
    good = shipped_dir() / "lenet7.json"
    out = tmp_path / "out.json"
    return [
        (["split", profile, good, "--uplink", "20Mbps", "-o", out], r"profile .*garbage\.json is not UTF-8 text"),
        (["calibrate", profile, "-o", out], r"profile .*garbage\.json is not UTF-8 text"),
        (["simulate", "--scenario", scenario, "--slots", "2", "-o", out], r"scenario .*garbage\.toml is not UTF-8"),
        ([*SIMULATE, "--set", f'services.profiles={{lenet7 = "{profile}"}}', "-o", out],
         r"profile .*garbage\.json is not UTF-8 text"),
        (["scenario", "show", scenario], r"scenario .*garbage\.toml is not UTF-8 text"),
        (["profile", "lenet7", "--leakage", _garbage(tmp_path, "leakage.csv"), "-o", out],
         r"leakage\.csv is not a leakage table \('utf-8' codec can't decode"),
        (["plot", rundir, "-o", tmp_path / "out.png"], r"run configuration .*config\.json is not UTF-8 text"),
    ]


@pytest.mark.parametrize("case", [*range(5), pytest.param(5, marks=pytest.mark.slow), 6])  # 5 profiles: seconds
def test_a_file_that_is_not_utf8_is_one_line_for_every_command(run_cli, tmp_path, case):
    args, message = _non_utf8_cases(tmp_path)[case]
    _refused(run_cli(*args), message, tmp_path / "out.json", tmp_path / "out.png")


def _split(run_cli, *outputs: str):
    good = shipped_dir() / "lenet7.json"
    return run_cli("split", good, good, "--uplink", "20Mbps", "--device-flops", "1GFLOPS", "--edge-flops", "10GFLOPS",
                   "-q", *outputs)


def test_output_into_proc_is_refused_and_a_failed_second_output_leaves_no_first(run_cli, tmp_path):
    _refused(_split(run_cli, "-o", "/proc/x.json"), "cannot write /proc/x.json: directory /proc")
    left = tmp_path / "left.json"
    _refused(_split(run_cli, "-o", left, "--plot", "/proc/x.png"), "cannot write /proc/x.png", left)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("target", "code", "reason"),
    [("write_text", errno.ENOSPC, "No space left on device"), ("replace", errno.EIO, "Input/output error")],
)
def test_a_full_disk_or_failing_rename_is_one_line_and_keeps_the_old_file(run_cli, tmp_path, monkeypatch, target,
                                                                          code, reason):
    out = tmp_path / "advice.json"
    out.write_text("old")

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path if target == "write_text" else os, target, fail)
    result = _split(run_cli, "-o", out)
    monkeypatch.undo()
    _refused(result, rf"cannot write .*advice\.json: {reason}")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["advice.json"]


def test_atomic_writes_flush_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def record_replace(source, target):
        events.append(("replace", str(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    target = tmp_path / "out.json"
    write_text_atomic(target, "{}")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert Path(events[0][1]).parent == tmp_path and Path(events[0][1]).name.startswith(".out.json.")
    assert events[1][1] == str(target) and events[2][1] == str(tmp_path)


@pytest.mark.slow  # both tracers try it (torch.export: seconds)
def test_a_model_whose_forward_raises_is_one_line(run_cli, tmp_path, monkeypatch):
    (tmp_path / "issue29_raising.py").write_text(
        "from torch import nn\n\n\nclass Raising(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n\n    def forward(self, x):\n        return [self.conv(x)][1]\n\n\n"
        "def model():\n    return Raising()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "p.json"
    _refused(run_cli("profile", "issue29_raising:model", "--input-size", "16", "-o", out),
             r"issue29_raising:model fails when run on a real input: IndexError: list index out of range \(at "
             r"issue29_raising\.py:10: return \[self\.conv\(x\)\]\[1\]\)$", out)


@pytest.mark.parametrize("run", ["--verify-cuts", "--measure"])
def test_a_forward_that_fails_only_on_real_tensors_is_one_line(run_cli, tmp_path, monkeypatch, run):
    """Tracing on meta tensors does not check an index's value; running it for real does."""
    (tmp_path / "issue29_real_failure.py").write_text(
        "from torch import nn\n\n\nclass OutOfRange(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n\n    def forward(self, x):\n        return self.conv(x)[[5]]\n\n\n"
        "def model():\n    return OutOfRange()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "p.json"
    assert run_cli("profile", "issue29_real_failure:model", "--input-size", "16", "-q", "-o", out).code == 0
    out.unlink()
    _refused(run_cli("profile", "issue29_real_failure:model", "--input-size", "16", run, "-o", out),
             r"^edgeprof: error: issue29_real_failure:model fails when run on a real input: IndexError: index 5 is "
             r"out of bounds for dimension 0 with size 1 \(at issue29_real_failure\.py:10: return self\.conv\(x\)"
             r"\[\[5\]\]\)$", out)


def test_a_user_module_raising_system_exit_on_import_is_one_line(run_cli, tmp_path, monkeypatch):
    (tmp_path / "issue29_exiting.py").write_text("import sys\n\nsys.exit(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "p.json"
    _refused(run_cli("profile", "issue29_exiting:model", "-o", out),
             r"cannot import issue29_exiting for model issue29_exiting:model: it called sys\.exit\(4\)", out)


def test_a_forward_calling_sys_exit_is_one_line(run_cli, tmp_path, monkeypatch):
    (tmp_path / "issue29_exiting_forward.py").write_text(
        "import sys\n\nimport torch\nfrom torch import nn\n\n\nclass Exiting(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
        "    def forward(self, x):\n        y = self.conv(x)\n        if y.device.type == 'cpu':  # real, not meta\n"
        "            sys.exit(5)\n        return y\n\n\ndef model():\n    return Exiting()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "p.json"
    _refused(run_cli("profile", "issue29_exiting_forward:model", "--input-size", "16", "--verify-cuts", "-o", out),
             r"issue29_exiting_forward:model fails when run on a real input: its forward called sys\.exit\(5\)$", out)


def test_a_negative_seed_is_refused(run_cli):
    _refused(run_cli(*SIMULATE, "--seed", "-1"), "--seed")


def test_a_scenario_too_big_for_memory_is_refused_before_allocating(run_cli, tmp_path, monkeypatch):
    out = tmp_path / "sim.json"
    _refused(run_cli(*SIMULATE, "--set", "system.num_users=1000000", "--set", "system.num_servers=10000", "-o", out),
             r"scenario too large: users x servers x services = 10,000,000,000 exceeds", out)

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("edgeprof.sim.env.EdgeSystem.__init__", exhausted)
    _refused(run_cli(*SIMULATE, "-o", out), "out of memory: make the input, scenario or batch smaller", out)


def test_sigterm_mid_write_leaves_neither_a_temporary_file_nor_the_output(tmp_path):
    """The CLI turns SIGTERM into an unwinding KeyboardInterrupt, so `atomic_output` removes its temporary file
    (SIGKILL cannot be caught: the next write removes that one, see test_files)."""
    target = tmp_path / "out.json"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import signal, time\nfrom edgeprof.cli import _terminate\n"
         "from edgeprof.files import atomic_output\nsignal.signal(signal.SIGTERM, _terminate)\n"
         f"with atomic_output({str(target)!r}) as tmp:\n    tmp.write_text('half')\n    print('writing', flush=True)\n"
         "    time.sleep(60)\n"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=30) != 0
    finally:
        writer.kill()
        writer.wait()
    assert list(tmp_path.iterdir()) == []
