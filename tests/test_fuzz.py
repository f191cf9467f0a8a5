"""Fuzzing the command line: every command, driven with generated arguments, keeps the contract.

The contract (docs/architecture.md): exit code 0, 1, 2 or 3 only; never a traceback; errors on stderr only
(nothing on stdout when the input was bad); machine formats that always parse. Options are read
from the commands themselves (click parameters), so a new option is fuzzed without editing this
file. Values mix valid, borderline and garbage input: empty strings, huge and tiny numbers, nan,
inf, negative values, unicode, unknown units, and files that are empty, binary, truncated or have
the wrong columns.

Seeded (`derandomize=True`): a failure replays with the same examples. FUZZ_EXAMPLES sets the
number of cases per command (default: 10,000 across all commands per run).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import run_cli

TOTAL_CASES = int(os.environ.get("FUZZ_EXAMPLES_TOTAL", "10000"))
CASE_SECONDS = 20  # a single case running longer than this is a hang, and a failure


def _commands() -> dict[str, object]:
    """Every runnable command (subcommands of groups included) -> its click command object."""
    import typer

    from llmplan.cli import COMMANDS, LazyGroup, app

    group = typer.main.get_command(app)
    found = {}
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        sub = getattr(command, "commands", None)
        if sub:
            for sub_name, sub_command in sub.items():
                found[f"{name} {sub_name}"] = sub_command
        else:
            found[name] = command
    return found


COMMANDS = _commands()
PER_COMMAND = max(200, -(-TOTAL_CASES // max(1, len(COMMANDS))))  # ceil: at least TOTAL_CASES in all


def _make_files(folder: Path) -> dict[str, str]:
    """Files to hand to options that take paths: empty, binary, truncated, wrong columns, plausible."""
    files = {}

    def write(name: str, data: bytes) -> None:
        path = folder / name
        path.write_bytes(data)
        files[name] = str(path)

    write("empty.csv", b"")
    write("binary.bin", bytes(range(256)) * 4)
    write("truncated.csv", b"params,tokens,loss\n1e8,2e9,3.1\n2e8,4e")
    write("wrong_columns.csv", b"a,b,c\n1,2,3\n4,5,6\n")
    write("nan_rows.csv", b"params,tokens,loss\nnan,1e9,3\n1e8,-5,2\n1e8,2e9,0\n")
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["params", "tokens", "loss"])
    for index, (n, d) in enumerate([(n, d) for n in (1e7, 3e7, 1e8, 3e8) for d in (2e8, 1e9, 5e9)]):
        writer.writerow([n, d, 1.8 + 400 / n**0.34 + 400 / d**0.28])
    write("runs.csv", rows.getvalue().encode())
    write("runs.jsonl", b'{"params": 1e8, "tokens": 2e9, "loss": 3.0}\n{"params": 2e8')
    write("config.json", b'{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}')
    write("bad_config.json", b'{"model_type": "unicorn"}')
    write("law.toml", b'[mine]\nname = "x"\nform = "chinchilla"\nE = 1.7\nA = 400.0\nB = 400.0\nalpha = 0.34\nbeta = 0.28\nsource = "test"\n')
    write("bad_law.toml", b'[mine]\nform = "chinchilla"\nE = "x"\n')
    (folder / "presets_dir").mkdir()
    (folder / "presets_dir" / "models.toml").write_text('[m]\nname = "M"\narchitecture = "decoder"\nobjective = "clm"\nparams = 1\nsource = "s"\n')
    files["presets_dir"] = str(folder / "presets_dir")
    files["missing"] = str(folder / "does-not-exist.csv")
    return files


GARBAGE = ["", " ", "-", "--", "nan", "NaN", "inf", "-inf", "-1", "0", "1e400", "1e-400", "1e-30", "ünïcødé", "🦙", "abc", "7X", "3000pdf", "1:2", "1e20:1e25:5", "1e25:1e20:3", "1:1:0", "x" * 300, "null", "true", "{}", "[1]", "\x00"]
VALID = ["7B", "70B", "1.4T", "350M", "6.74e9", "175_000_000", "3000pfd", "1e24", "2.5e24 FLOPs", "80GB", "80GiB", "1", "2", "8", "0.4", "20", "1024", "4096", "bf16", "fp16", "fp32", "int4", "nf4", "chinchilla", "kaplan-2020", "all", "llama-2-7b", "h100", "a100", "v100", "adamw", "full", "flash", "mixed", "json", "csv", "tsv", "table", "jsonl", "decoder", "swiglu", "parametric", "isoflop", "1e18:1e25:4"]
FORMATS = ["json", "jsonl", "csv", "tsv", "table"]


def _option_values(files: dict[str, str]) -> st.SearchStrategy[str]:
    paths = list(files.values())
    numbers = st.one_of(
        st.integers(min_value=-10, max_value=10**6).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=1e-3, max_value=1e30).map(lambda x: f"{x:.3g}"),
    )
    return st.one_of(st.sampled_from(VALID), st.sampled_from(GARBAGE), st.sampled_from(paths), numbers, st.text(max_size=12))


def _argv_strategy(name: str, command, files: dict[str, str]):
    options = [p for p in command.params if getattr(p, "opts", None) and p.name not in ("help",)]
    flags = [p for p in options if getattr(p, "is_flag", False)]
    valued = [p for p in options if not getattr(p, "is_flag", False) and p.param_type_name == "option"]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    values = _option_values(files)

    @st.composite
    def build(draw):
        argv = name.split()
        for argument in arguments:
            argv.append(draw(values))
        chosen = draw(st.lists(st.sampled_from(valued), max_size=4, unique_by=lambda p: p.name)) if valued else []
        for option in chosen:
            argv += [draw(st.sampled_from(option.opts)), draw(values)]
        for flag in draw(st.lists(st.sampled_from(flags), max_size=2, unique=True)) if flags else []:
            argv.append(flag.opts[0])
        fmt = draw(st.sampled_from(FORMATS + [None]))
        if fmt:
            argv += ["--format", fmt]
        stdin = draw(st.sampled_from(["", "1e24\n", "7B 1.4T\n", "abc\n", "\x00\x01", "1e23\n1e24\n1e25\n"]))
        return argv, stdin

    return build()


class _Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Hang()


def _check_contract(argv: list[str], stdin: str) -> None:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        result = run_cli(argv, stdin=stdin)
    except _Hang:
        pytest.fail(f"hang (> {CASE_SECONDS} s): llmplan {' '.join(map(repr, argv))}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    where = f"llmplan {' '.join(map(repr, argv))} (stdin {stdin!r})"
    assert result.code in (0, 1, 2, 3), f"exit {result.code}: {where}\n{result.stderr}"
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, f"{where}\n{result.stderr}"
    if result.code == 2:
        assert result.stdout == "", f"bad input wrote to stdout: {where}"
        assert result.stderr.strip(), f"exit 2 without a message: {where}"
    given_formats = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--format", "-f")]
    if result.code == 0 and given_formats:
        fmt = given_formats[-1]  # the last of a repeated option wins, as in click
        if fmt == "json" and result.stdout:
            assert isinstance(json.loads(result.stdout), list), where
        elif fmt == "jsonl":
            for line in result.stdout.splitlines():
                json.loads(line)
        elif fmt == "csv" and result.stdout:
            rows = list(csv.reader(io.StringIO(result.stdout)))
            assert len({len(r) for r in rows}) == 1, f"ragged CSV: {where}"
        elif fmt == "tsv" and result.stdout:
            widths = {len(line.split("\t")) for line in result.stdout.splitlines()}
            assert len(widths) == 1, f"ragged TSV: {where}"


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory):
    return _make_files(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_keeps_the_contract(name, fuzz_files, monkeypatch, tmp_path):
    for variable in ("LLMPLAN_FORMAT", "LLMPLAN_PRESETS", "LLMPLAN_DEBUG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)  # files a command writes (--save, --plot) land here

    @settings(max_examples=PER_COMMAND, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_argv_strategy(name, COMMANDS[name], fuzz_files))
    def fuzz(case):
        argv, stdin = case
        _check_contract(argv, stdin)

    fuzz()


# ============================================================== families beyond arguments (issue 15)
# Files (hostile contents), streams (closed, full, ASCII-only, readers that leave), faults (--save to
# paths that cannot be written) and environment (LLMPLAN_* and terminal variables). Each case is
# checked against the same contract; subprocess cases are few and chosen, in-process ones drawn.

import subprocess
import sys

from conftest import REPO

FAMILY_CASES = int(os.environ.get("FUZZ_FAMILY_EXAMPLES", "300"))


def _hostile_files(folder: Path) -> dict[str, str]:
    files = {}

    def write(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        files[name] = str(folder / name)

    write("oversized_field.csv", b"params,tokens,loss\n1e8,2e9," + b"9" * 200_000 + b"\n")
    write("deep.json", b"[" * 100_000 + b"]" * 100_000)
    write("deep_object.json", b'{"runs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    write("bigint.json", b'[{"params": ' + b"1" * 5000 + b', "tokens": 2e9, "loss": 3}]')
    write("bigint.csv", b"params,tokens,loss\n" + b"1" * 5000 + b",2e9,3\n")
    write("huge_loss.csv", b"params,tokens,loss\n" + b"".join(b"%g,%g,%g\n" % (n, 20 * n, 1e300) for n in (1e7, 1e8, 1e9, 3e7, 3e8)))
    write("dup_columns.csv", b"params,tokens,loss,loss\n1e8,2e9,3,4\n")
    write("dup_keys.json", b'[{"params": 1e8, "tokens": 2e9, "loss": 3, "loss": 4}]')
    write("bom_crlf.csv", b"\xef\xbb\xbfparams,tokens,loss\r\n1e8,2e9,3.1\r\n2e8,4e9,3.0\r\n")
    write("nul.csv", b"params,tokens,loss\n1e8,2e9,3\x00\n")
    write("latin1.csv", b"params,tokens,loss\n1e8,2e9,3\xe9\n")
    write("same_ratio.csv", b"params,tokens,loss\n" + b"".join(b"%g,%g,%g\n" % (n, 20 * n, 1.7 + 400 / n**0.34 + 410 / (20 * n) ** 0.28) for n in (1e7, 3e7, 1e8, 3e8, 1e9)))
    write("one_size.csv", b"params,tokens,loss\n" + b"".join(b"1e8,%g,%g\n" % (d, 2 + 1e3 / d**0.3) for d in (1e9, 2e9, 5e9, 1e10, 2e10)))
    write("negative.csv", b"params,tokens,loss\n-1e8,2e9,3\n")
    write("wide.csv", b",".join(b"c%d" % i for i in range(20_000)) + b"\n" + b",".join(b"1" for _ in range(20_000)) + b"\n")
    for name, text in {
        "deep_toml": "[x]\nname = \"x\"\nform = \"chinchilla\"\nsource = \"s\"\nE = " + "[" * 5000 + "]" * 5000 + "\n",
        "huge_layers": '[big]\nname = "B"\narchitecture = "decoder"\nobjective = "clm"\nparams = 7e9\nlayers = 1e300\nd_model = 4096\nheads = 32\nffn = 11008\nvocab = 32000\nmlp = "swiglu"\nsource = "s"\n',
        "negative_range": '[neg]\nname = "n"\nform = "chinchilla"\nE = 1.7\nA = 400.0\nB = 400.0\nalpha = 0.34\nbeta = 0.28\nsource = "s"\nfitted_min_params = -5\nfitted_max_params = 1e9\n',
        "gpu_override": '[h100-sxm]\nname = "mine"\nmemory_bytes = 80_000_000_000\nbandwidth = 3.35e12\npeak_bf16 = 989.4e12\nsource = "mine"\n',
    }.items():
        sub = folder / name
        sub.mkdir()
        kind = "gpus" if name == "gpu_override" else "models" if name == "huge_layers" else "laws"
        (sub / f"{kind}.toml").write_text(text)
        files[name] = str(sub)
    return files


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    return _hostile_files(tmp_path_factory.mktemp("hostile"))


FILE_COMMANDS = [
    lambda f: ["fit", f],
    lambda f: ["fit", f, "-f", "json"],
    lambda f: ["fit", f, "--method", "isoflop"],
    lambda f: ["fit", f, "--skip-bad-rows", "-f", "csv"],
    lambda f: ["presets", "list", "--presets", f],
    lambda f: ["memory", "--preset", "big", "--presets", f],
    lambda f: ["optimal", "--budget", "1e24", "--law", f],
    lambda f: ["memory", "--params", "7B", "--gpu", "h100", "--presets", f, "-f", "json"],
    lambda f: ["arch", "--hf-config", f],
]


def test_hostile_files_keep_the_contract(hostile_files, monkeypatch, tmp_path):
    for variable in ("LLMPLAN_FORMAT", "LLMPLAN_PRESETS", "LLMPLAN_DEBUG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)

    @settings(max_examples=FAMILY_CASES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(hostile_files.values())), st.sampled_from(range(len(FILE_COMMANDS))))
    def fuzz(path, which):
        _check_contract(FILE_COMMANDS[which](path), "")

    fuzz()


def test_hostile_stdin_keeps_the_contract(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    lines = st.one_of(
        st.sampled_from(["1e24", "3000pfd", "7B 1.4T", "7,000,000,000 1T", "1_000pfd", "", "# comment", "nan", "-1", "1e400", "\x00", "x" * 20_000, " " * 50_000 + "1e24"]),
        st.text(max_size=30),
    )
    commands = [["optimal", "--budget", "-"], ["optimal", "--budget", "-", "-f", "json"], ["loss", "--params", "-"], ["arch", "--target", "-"], ["memory", "--params", "7B", "--gpu", "-", "--check"], ["fit", "-"]]

    @settings(max_examples=FAMILY_CASES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(range(len(commands))), st.lists(lines, max_size=8), st.sampled_from(["\n", "\r\n"]))
    def fuzz(which, chosen, newline):
        _check_contract(commands[which], newline.join(chosen))

    fuzz()


# ---------------------------------------------------------------------------- environment

def test_environment_variables_keep_the_contract(monkeypatch, tmp_path, hostile_files):
    monkeypatch.chdir(tmp_path)
    values = {
        "LLMPLAN_FORMAT": st.sampled_from(["", "json", "JSON", "yaml", "csv ", "x" * 1000, "\u00e9"]),
        "LLMPLAN_PRESETS": st.sampled_from(["", str(tmp_path / "missing"), str(tmp_path), hostile_files["deep_toml"], hostile_files["gpu_override"], "x" * 5000]),
        "NO_COLOR": st.sampled_from(["", "1"]),
        "COLUMNS": st.sampled_from(["", "0", "-5", "1", "20", "100000", "abc"]),
        "LINES": st.sampled_from(["", "0", "abc"]),
    }
    argvs = [["optimal", "--budget", "1e24"], ["memory", "--params", "7B", "--gpu", "h100"], ["compare"], ["presets", "list"], ["gpus"], ["loss", "--params", "7B", "--tokens", "1T", "-f", "table"]]

    @settings(max_examples=max(50, FAMILY_CASES // 3), derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.fixed_dictionaries({k: v for k, v in values.items()}), st.sampled_from(range(len(argvs))))
    def fuzz(env, which):
        from llmplan import presets

        presets._CACHE.clear()
        with monkeypatch.context() as m:
            for key, value in env.items():
                if value:
                    m.setenv(key, value)
                else:
                    m.delenv(key, raising=False)
            _check_contract(argvs[which], "")
        presets._CACHE.clear()

    fuzz()


# ---------------------------------------------------------------------------- faults: --save

def test_save_faults_keep_the_contract(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs.csv"
    runs.write_text("params,tokens,loss\n" + "".join(
        f"{n},{n * r},{1.7 + 400 / n**0.34 + 410 / (n * r)**0.28}\n" for n in (1e7, 3e7, 1e8, 3e8, 1e9) for r in (5, 20, 80)))
    (tmp_path / "folder.toml").mkdir()
    (tmp_path / "dangling.toml").symlink_to(tmp_path / "nowhere")
    (tmp_path / "exists.toml").write_text("keep me\n")
    targets = ["folder.toml", "dangling.toml", "exists.toml", "missing/x.toml", "a" * 300 + ".toml", "", " ", "-", "x\x00y.toml", str(tmp_path)]
    for target in targets:
        for extra in ([], ["--force"]):
            # one start of the grid: the fault is in the writing, not the fit
            _check_contract(["fit", str(runs), "--grid", "a=6,b=6,e=0.5,alpha=0.3,beta=0.3", "--save", target, *extra], "")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind by any failure


# ---------------------------------------------------------------------------- streams (subprocesses)

STREAM_COMMANDS = [
    ["optimal", "--budget", "1e24"],
    ["optimal", "--budget", "1e20:1e25:50000", "-f", "csv"],  # ~5 MB: more than a pipe holds
    ["compare", "-f", "table"],
    ["memory", "--preset", "llama-2-7b", "--gpu", "h100", "-f", "table"],
    ["fit", "tests/data/fit_runs_noisy.csv", "-f", "table"],
    ["presets", "show", "llama-2-7b"],
    ["--help"],
]
STREAM_SETUPS = {
    "stdout closed": ("{cmd} >&-", (1,)),
    "stdout full": ("{cmd} > /dev/full", (1,)),
    "stderr closed": ("{cmd} > /dev/null 2>&-", (0,)),
    "reader leaves": ("{cmd} | head -c 10 > /dev/null; exit ${{PIPESTATUS[0]}}", (0,)),
    "ascii only": ("PYTHONIOENCODING=ascii {cmd} > /dev/null", (0,)),
    "C locale": ("LC_ALL=C LANG=C {cmd} > /dev/null", (0,)),
}


@pytest.mark.parametrize("setup", sorted(STREAM_SETUPS))
@pytest.mark.parametrize("argv", STREAM_COMMANDS, ids=lambda a: " ".join(a)[:40])
def test_streams_keep_the_contract(setup, argv):
    template, codes = STREAM_SETUPS[setup]
    if "/dev/full" in template and not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    command = " ".join([sys.executable, "-m", "llmplan", *argv])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPLAN_")}
    result = subprocess.run(template.format(cmd=command), shell=True, executable="/bin/bash", capture_output=True, cwd=REPO, env=env, timeout=120)
    err = result.stderr.decode(errors="replace")
    assert result.returncode in codes, (setup, argv, result.returncode, err[-400:])
    assert "Traceback" not in err and "internal error" not in err and "Exception ignored" not in err, err[-400:]
    if result.returncode == 1:
        assert err.strip().splitlines()[-1].startswith("llmplan: error: cannot write the result to stdout")
