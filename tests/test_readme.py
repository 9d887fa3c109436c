"""Every code block of README.md runs, as written, so the README cannot drift from the code.

Whatever blocks the README holds are found and run; a failure names the block's line in README.md.
All of them run in a temporary folder that holds a copy of ``examples/`` and nothing else, with
a private run store there (``TRAINLAB_STORE`` and ``TRAINLAB_ARTIFACTS`` are unset, so the
README's defaults apply: ``runs/trainlab.db`` in that folder).

- ```` ```python ```` blocks run in README order in one fresh interpreter, in one namespace (a
  block may use what an earlier one defined), exactly as written.
- ```` ```toml ```` blocks are run configs: each is validated and trained for 2 steps; one whose
  first line is a comment naming an example (`# examples/custom/custom.toml`) is read from a file
  beside that example, so its targets resolve as they would there.
- ```` ```bash ```` blocks run line by line in one bash session, as written, with two mechanical
  changes, both below in ``SESSION``:

  1. *Tiny budgets*: ``trainlab`` is a shell function that runs ``python -m trainlab`` with
     budget arguments appended after the line's own (``train.max_steps=2 data.subset=256`` for
     commands that train from a config, ``--trials 2`` for tune and nas, ``--seeds 1`` for
     compare, ``--steps 5`` for lr-find, ``--quick`` for reproduce). Options given twice keep the
     last value, so ``--trials 30`` becomes 2 trials; nothing else about the line changes.
  2. *Placeholders* (``RUN_ID``, listed in ``PLACEHOLDERS``) become the id the last
     ``trainlab run`` printed; on a ``--resume`` line, the id of a run interrupted the way
     Ctrl-C interrupts one (a ``KeyboardInterrupt`` after its first step, made when the session
     starts). An unknown all-caps word fails the test: add it there.

  ``make`` lines are checked with ``make --dry-run`` (the target exists and its recipe expands):
  ``make test`` would run this very test, ``make demo`` trains for minutes.
  ``source .venv/bin/activate`` sources a stub that puts this interpreter's scripts on PATH.

The two tests that start processes are marked ``slow``; ``make test-readme`` runs this file and
``.ci/run`` calls it after ``make test``. ``test_overrides_survive_zsh_and_fish`` checks that each ``trainlab`` line reaches the program
with the same arguments in bash, zsh and fish (unquoted ``[...]`` or ``~`` would not).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
KINDS = ("bash", "python", "toml")
PLACEHOLDERS = {"RUN_ID": '"$RUN_ID"', "RUN_ID_OR_COMPARISON": '"$RUN_ID"'}
RESUME_PLACEHOLDERS = {"RUN_ID": '"$INTERRUPTED_RUN_ID"'}  # on lines with --resume
BUDGET_OVERRIDES = ["train.max_steps=2", "data.subset=256"]

SESSION = r"""
set -eo pipefail
make() { command make --dry-run --directory "$REPO" "$@" >/dev/null; }
INTERRUPTED_RUN_ID=$("$PY" - <<'EOF'
from trainlab.train import Callback, load_config, run

class CtrlC(Callback):  # what Ctrl-C in the middle of a run does
    def on_step_end(self, trainer, step, logs):
        raise KeyboardInterrupt

result = run(load_config("examples/quickstart.toml", ["train.max_steps=4", "data.subset=256"]), callbacks=[CtrlC()])
assert result.status == "interrupted", result.status
print(result.run_id)
EOF
)
trainlab() {
  local extra=()
  case "$1" in
    run) [[ -z "${2:-}" || "${2:-}" == -* ]] || extra=(__OVERRIDES__) ;;
    compare) extra=(__OVERRIDES__ --seeds 1) ;;
    tune|nas) extra=(__OVERRIDES__ --trials 2) ;;
    lr-find) extra=(data.subset=256 --steps 5) ;;
    reproduce) extra=(--quick) ;;
  esac
  local out status=0
  out=$("$PY" -m trainlab "$@" "${extra[@]}") || status=$?
  printf '%s\n' "$out"
  if [[ $status == 0 && "$1" == run && "${out##*$'\n'}" =~ ^[0-9a-f]{12}$ ]]; then RUN_ID="${out##*$'\n'}"; fi
  return $status
}
""".replace("__OVERRIDES__", " ".join(BUDGET_OVERRIDES))


@dataclass
class Block:
    kind: str
    line: int  # of the opening fence, 1-based
    text: str

    def lines(self) -> list[tuple[int, str]]:
        """``(README line, command)`` of each non-empty, non-comment line (``\\`` continuations joined)."""
        out: list[tuple[int, str]] = []
        pending, start = "", 0
        for i, text in enumerate(self.text.splitlines(), start=self.line + 1):
            if not pending:
                start = i
            if text.rstrip().endswith("\\"):
                pending += text.rstrip()[:-1] + " "
                continue
            command, pending = pending + text, ""
            if command.strip() and not command.lstrip().startswith("#"):
                out.append((start, command.strip()))
        return out


def readme_blocks() -> list[Block]:
    blocks, kind, start, body = [], None, 0, []
    for i, text in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if kind is None and text.startswith("```"):
            kind, start, body = text[3:].strip(), i, []
        elif kind is not None and text.startswith("```"):
            blocks.append(Block(kind, start, "\n".join(body) + "\n"))
            kind = None
        elif kind is not None:
            body.append(text)
    assert kind is None, f"README.md line {start}: a code block is never closed"
    return blocks


def of_kind(kind: str) -> list[Block]:
    return [b for b in readme_blocks() if b.kind == kind]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with a copy of examples/ and a stub .venv/bin/activate; the env of its commands."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", work / "examples")
    activate = work / ".venv" / "bin" / "activate"
    activate.parent.mkdir(parents=True)
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("TRAINLAB_STORE", "TRAINLAB_ARTIFACTS")}
    env.update(PY=sys.executable, REPO=str(ROOT), PYTHONUNBUFFERED="1")
    return work, env


def test_every_block_is_of_a_kind_this_test_runs():
    blocks = readme_blocks()
    assert {b.kind for b in blocks} == set(KINDS), "the README should show a shell, a Python and a TOML example"
    for b in blocks:
        assert b.kind in KINDS, f"README.md line {b.line}: a ```{b.kind} block; teach tests/test_readme.py to run it"


@pytest.mark.slow  # a run and a 20-trial GP search, as written; `make test-readme` (in .ci/run) runs it
def test_python_blocks_run_in_order(workdir):
    work, env = workdir
    blocks = [(b.line, b.text) for b in of_kind("python")]
    driver = work / "run_readme_python.py"
    driver.write_text(
        "import json, sys, traceback\n"
        f"blocks = json.loads({json.dumps(json.dumps(blocks))})\n"
        "namespace = {'__name__': '__main__'}\n"
        "for line, text in blocks:\n"
        "    try:\n"
        "        exec(compile('\\n' * line + text, 'README.md', 'exec'), namespace)  # tracebacks show README lines\n"
        "    except BaseException:\n"
        "        traceback.print_exc()\n"
        "        print(f'the python block at README.md line {line} failed', file=sys.stderr)\n"
        "        sys.exit(1)\n"
    )
    r = subprocess.run([sys.executable, str(driver)], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]


def test_toml_blocks_are_run_configs_that_train(workdir):
    import tomllib

    from trainlab.store import Store
    from trainlab.train import load_config, run

    work, _ = workdir
    for b in of_kind("toml"):
        try:
            first = b.text.lstrip().splitlines()[0]
            named = re.fullmatch(r"#\s*(examples/\S+\.toml).*", first)
            if named:  # an excerpt of an example: it lives beside the example's code
                path = work / named.group(1)
                path = path.with_name(f"readme-{path.name}")
                path.write_text(b.text)
                config = load_config(path, BUDGET_OVERRIDES)
            else:
                config = load_config(tomllib.loads(b.text), BUDGET_OVERRIDES)
            result = run(config, store=Store(":memory:"))
        except Exception as err:
            pytest.fail(f"the toml block at README.md line {b.line}: {type(err).__name__}: {err}")
        assert result.status == "completed", f"README.md line {b.line}: {result.status} {result.message}"


def shell_script() -> str:
    """The README's shell lines, each after a marker naming its README line, placeholders filled."""
    parts = [SESSION]
    for block in of_kind("bash"):
        for line, command in block.lines():
            for word in shlex.split(command, comments=True):
                if re.fullmatch(r"[A-Z][A-Z0-9_]*[A-Z0-9]", word) and word not in PLACEHOLDERS:
                    pytest.fail(
                        f"README.md line {line}: placeholder {word}; add it to PLACEHOLDERS in tests/test_readme.py"
                    )
            values = {**PLACEHOLDERS, **(RESUME_PLACEHOLDERS if "--resume" in command else {})}
            for name in sorted(values, key=len, reverse=True):
                command = re.sub(rf"(?<![\w$]){name}(?!\w)", values[name], command)
            parts.append(f"echo '### README.md line {line}: {command.replace(chr(39), '')}' >&2\n{command}")
    return "\n".join(parts) + "\n"


@pytest.mark.slow  # ~20 trainlab processes; `make test-readme` (in .ci/run) runs it
def test_shell_blocks_run_as_written_with_tiny_budgets(workdir):
    work, env = workdir
    r = subprocess.run(["bash", "-c", shell_script()], cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        markers = [x for x in r.stderr.splitlines() if x.startswith("### README.md line ")]
        where = markers[-1][4:] if markers else "before the first line"
        pytest.fail(f"{where} failed (exit {r.returncode}):\n{r.stderr[-4000:]}\n{r.stdout[-2000:]}")
    assert (work / "report.html").exists() and (work / "runs" / "trainlab.db").exists()


SHELLS = {
    "bash": ("bash", "-c", "args() { printf '%s\\n' \"$@\"; }\n{line}"),
    "zsh": ("zsh", "-c", "args() { printf '%s\\n' \"$@\"; }\n{line}"),
    "fish": ("fish", "-c", "function args; printf '%s\\n' $argv; end\n{line}"),
}


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_overrides_survive_zsh_and_fish(shell, tmp_path):
    if shutil.which(shell) is None:
        pytest.skip(
            f"{shell} is not installed (apt-get install {shell}); bash alone cannot show the quoting works there"
        )
    commands = [(line, c) for b in of_kind("bash") for line, c in b.lines() if c.startswith("trainlab ")]
    assert commands
    for line, command in commands:
        seen = {}
        for name in ("bash", shell):
            program, flag, template = SHELLS[name]
            script = template.replace("{line}", "args" + command[len("trainlab") :])
            r = subprocess.run([program, flag, script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"README.md line {line} fails in {name}: {r.stderr.strip()}"
            seen[name] = r.stdout.splitlines()
        assert seen[shell] == seen["bash"], f"README.md line {line}: {shell} passes {seen[shell]}, bash {seen['bash']}"
