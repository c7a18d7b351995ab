"""kronos-tui performance figures: first frame, attaching to a long run, following a live run, typing.

    python benchmarks/bench_tui.py                 # all three, 1M-line file, 20 s of following
    python benchmarks/bench_tui.py --lines 200000 --follow-seconds 10

1. first frame: a fresh interpreter starts the app (headless driver) and
   records when the first screen has been painted; also, when tmux is present,
   the time until a real terminal shows the presets screen.
2. attach: an events file of ``--lines`` records (steps, GPU samples every 10
   steps, a validation per epoch); time until the monitor has drawn the loss
   curve, and until the exact read of every line has caught up.
3. follow: the app (a separate process) follows a live run while this process
   appends step records at ``--rate`` per second and a GPU record every 2 s;
   the app's CPU time over ``--follow-seconds`` as a share of one core.
4. typing: CPU time per keystroke in a field of the preset form (76 fields,
   validated on every key), against a one-Input Textual app in the same run.

Targets (issue 5): first frame < 1 s; curves of a 1M-line run < 3 s;
following < 5 % of one core.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST_FRAME_SCRIPT = r"""
import os, sys, time
t_spawn = float(os.environ["BENCH_T0"])
from kronos_tui.app import KronosApp

class Timed(KronosApp):
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self._painted)

    def _painted(self):
        print(f"{time.time() - t_spawn:.4f}", flush=True)
        self.exit()

Timed(None).run(headless=True)
"""


def child_env(logs: Path, user: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(KRONOS_LOGS_DIR=str(logs), KRONOS_TUI_PRESETS=str(user), PYTHONPATH=str(REPO),
               TEXTUAL_ANIMATIONS="none")
    env.pop("LINES", None)
    env.pop("COLUMNS", None)
    return env


# --------------------------------------------------------------------------- 1. first frame

def first_frame(work: Path, repeats: int = 5) -> dict[str, float]:
    env = child_env(work / "logs", work / "user")
    times = []
    for _ in range(repeats):
        env["BENCH_T0"] = repr(time.time())
        out = subprocess.run([sys.executable, "-c", FIRST_FRAME_SCRIPT], env=env, cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        times.append(float(out.stdout.strip().splitlines()[-1]))
    result = {"headless_median_s": statistics.median(times), "headless_max_s": max(times)}
    if shutil.which("tmux"):
        result["tmux_median_s"] = statistics.median(first_frame_tmux(work, env) for _ in range(3))
    return result


def first_frame_tmux(work: Path, env: dict[str, str]) -> float:
    session = f"bench-tui-{os.getpid()}"
    exports = " ".join(f"{k}={v}" for k, v in env.items() if k in ("KRONOS_LOGS_DIR", "KRONOS_TUI_PRESETS",
                                                                    "PYTHONPATH"))
    start = time.time()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(REPO),
                    f"env -u LINES -u COLUMNS {exports} {sys.executable} -m kronos_tui"], check=True)
    try:
        while time.time() - start < 30:
            pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True).stdout
            if "[1 Presets]" in pane and "palette" in pane:
                return time.time() - start
            time.sleep(0.01)
        raise RuntimeError("the presets screen never appeared in tmux")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# --------------------------------------------------------------------------- 2. attach

def write_long_run(logs: Path, lines: int) -> Path:
    """run_start, stage_start, then steps with a GPU record every 10 steps and a val per epoch."""
    from kronos_train.config import dump_yaml, load_preset, to_dict
    from kronos_train.control.events import SCHEMA_VERSION, encode
    from kronos_train.control.runfolder import write_json_atomic
    from tests.synthetic_runs import loss_at

    run_dir = logs / "20261127-190000-big"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_yaml(to_dict(load_preset("demo")[0])))
    (run_dir / "preset.txt").write_text("demo\n")
    steps = int(lines / 1.1)
    per_epoch = max(1, steps // 10)
    t = 1_764_270_000.0
    with open(run_dir / "events.jsonl", "wb") as fh:
        fh.write(encode({"t": t, "event": "run_start", "schema": SCHEMA_VERSION, "run_id": run_dir.name,
                         "preset": "demo", "stages": ["basemodel"], "world_size": 8, "attempt": 0, "host": "node1"}))
        fh.write(encode({"t": t, "event": "stage_start", "stage": "basemodel", "attempt": 0, "epochs": 10,
                         "steps_per_epoch": per_epoch, "total_steps": per_epoch * 10, "world_size": 8}))
        buf = []
        for step in range(1, steps + 1):
            t += 0.2
            buf.append(encode({"t": round(t, 3), "event": "step", "stage": "basemodel", "attempt": 0, "step": step,
                               "epoch": round(step / per_epoch, 4), "loss": loss_at(step // 50, "basemodel"),
                               "lr": 4e-5, "parts": {"ce_s1": 1.2, "ce_s2": 1.3}, "grad_norm": 0.8,
                               "samples_per_s": 2048.0, "data_wait": 0.03}))
            if step % 10 == 0:
                buf.append(encode({"t": round(t, 3), "event": "gpu", "host": "node1", "gpus": [
                    {"index": i, "name": "NVIDIA H100", "util": 93.0, "mem_used_mb": 50000.0,
                     "mem_total_mb": 81559.0, "temp_c": 60.0, "power_w": 500.0} for i in range(8)]}))
            if step % per_epoch == 0:
                buf.append(encode({"t": round(t, 3), "event": "val", "stage": "basemodel", "attempt": 0,
                                   "step": step, "epoch": step // per_epoch,
                                   "val_loss": 3.0 - 0.01 * (step // per_epoch), "best_val_loss": 2.9,
                                   "improved": True}))
            if len(buf) > 5000:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    write_json_atomic(run_dir / "status.json", {"run_id": run_dir.name, "preset": "demo", "state": "completed",
                                                "host": "node1", "started_at": 1_764_270_000.0, "updated_at": t})
    return run_dir


def attach(logs: Path, user: Path) -> dict[str, float]:
    os.environ["KRONOS_LOGS_DIR"], os.environ["KRONOS_TUI_PRESETS"] = str(logs), str(user)
    from kronos_tui.app import KronosApp
    from kronos_tui.services import Services
    from kronos_tui.widgets.plots import LossPlot

    async def run() -> dict[str, float]:
        start = time.perf_counter()
        app = KronosApp("20261127-190000-big", services=Services(logs_dir=logs))
        curves = exact = None
        async with app.run_test(size=(120, 40)) as pilot:
            while time.perf_counter() - start < 120:
                snap = app.snapshot
                if curves is None and snap is not None and snap.plot.raw:
                    plot = app.screen.query_one(LossPlot)
                    await pilot.pause()                 # let the plot paint
                    if plot.has_data:
                        curves = time.perf_counter() - start
                if snap is not None and snap.reading.caught_up and not any("overview" in n for n in snap.plot.notes):
                    exact = time.perf_counter() - start
                    records = snap.reading.records
                    break
                await asyncio.sleep(0.01)
        return {"curves_shown_s": curves or float("nan"), "exact_read_s": exact or float("nan"),
                "records": float(records if exact else 0)}

    return asyncio.run(run())


# --------------------------------------------------------------------------- 4. typing

KEYS = "1234567890" * 3


async def _cpu_per_key(app, focus: str, ready) -> float:
    """CPU seconds per key typed at 10 keys/s, less the app's idle CPU over as long.
    Keys go through the driver, not Pilot.press: the pilot's own wait visits every
    widget of the screen after each key, which would dominate the figure."""
    from textual import events

    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        box = app.screen.query_one(focus)
        box.focus()
        await pilot.pause(0.3)
        seconds = len(KEYS) * 0.1 + 0.5
        cpu = time.process_time()
        await asyncio.sleep(seconds)
        idle = time.process_time() - cpu
        cpu = time.process_time()
        for key in KEYS:
            app._driver.send_message(events.Key(key, key))     # as a terminal's key would arrive
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        busy = time.process_time() - cpu
        assert box.value.endswith(KEYS), f"the keys did not reach the field: {box.value!r}"
        return (busy - idle) / len(KEYS)


def typing(logs: Path, user: Path) -> dict[str, float]:
    os.environ["KRONOS_LOGS_DIR"], os.environ["KRONOS_TUI_PRESETS"] = str(logs), str(user)
    (user / "typing.yaml").write_text("extends: kaggle\ntraining:\n  batch_size: 16\n", encoding="utf-8")
    from textual.app import App
    from textual.widgets import Input

    from kronos_tui.app import KronosApp
    from kronos_tui.screens.editor import PresetEditor
    from kronos_tui.services import Services

    class OneInput(App):
        def compose(self):
            yield Input(id="box")

    async def nothing(pilot) -> None:
        await pilot.pause(0.2)

    async def open_editor(pilot) -> None:
        await pilot.pause(0.5)
        await pilot.press("e")
        while not isinstance(pilot.app.screen, PresetEditor):
            await pilot.pause(0.05)
        await pilot.pause(0.5)

    baseline = asyncio.run(_cpu_per_key(OneInput(), "#box", nothing))
    form = asyncio.run(_cpu_per_key(KronosApp("typing", services=Services(logs_dir=logs, auto_model_check=False)),
                                    "#f-training--batch_size", open_editor))
    return {"baseline_ms": 1e3 * baseline, "form_ms": 1e3 * form}


# --------------------------------------------------------------------------- 3. follow

FOLLOW_SCRIPT = r"""
import sys
from kronos_tui.app import KronosApp
KronosApp(sys.argv[1]).run(headless=True)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def follow(work: Path, seconds: float, rate: float) -> dict[str, float]:
    from tests.synthetic_runs import LiveRun, RunSpec, write_run

    logs = work / "follow-logs"
    run = write_run(logs, RunSpec(run_id="20261127-210000-live", finish=False, state="running",
                                  stop_at={"tokenizer": 40}, host="node1"))
    env = child_env(logs, work / "user")
    with LiveRun(run) as live:
        proc = subprocess.Popen([sys.executable, "-c", FOLLOW_SCRIPT, run.run_id], env=env, cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(5.0)                             # start-up and catch-up are not "following"
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()[-2000:])
            step, gpu_t = 45, 0.0
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            next_t = t0
            while time.monotonic() - t0 < seconds:
                live.step("tokenizer", step, grad_norm=1.0)
                step += 5
                if time.monotonic() - gpu_t >= 2.0:
                    gpu_t = time.monotonic()
                    live.emit("gpu", host="node1", gpus=[{"index": i, "util": 90.0, "mem_used_mb": 1e4,
                                                          "mem_total_mb": 8e4, "power_w": 300.0} for i in range(8)])
                next_t += 1.0 / rate
                time.sleep(max(0.0, next_t - time.monotonic()))
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {"cpu_share_of_one_core": (cpu1 - cpu0) / (t1 - t0), "seconds": t1 - t0, "records_per_s": rate}


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--follow-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0, help="step records per second while following")
    parser.add_argument("--only", choices=("first-frame", "attach", "follow", "typing"), default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    (work / "logs").mkdir()
    (work / "user").mkdir()
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    try:
        if args.only in (None, "first-frame"):
            r = first_frame(work)
            line = f"first frame (headless, fresh interpreter): median {r['headless_median_s']:.3f} s, " \
                   f"max {r['headless_max_s']:.3f} s   [target < 1 s]"
            print(line)
            if "tmux_median_s" in r:
                print(f"first frame in tmux 80x24 (spawn to presets drawn): median {r['tmux_median_s']:.3f} s")
        if args.only in (None, "attach"):
            t = time.perf_counter()
            run_dir = write_long_run(work / "logs", args.lines)
            size = (run_dir / "events.jsonl").stat().st_size
            print(f"wrote {args.lines:,} lines ({size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
            r = attach(work / "logs", work / "user")
            print(f"attach to {args.lines:,} lines: curves drawn after {r['curves_shown_s']:.2f} s   [target < 3 s]; "
                  f"exact read of all {int(r['records']):,} records after {r['exact_read_s']:.2f} s")
        if args.only in (None, "follow"):
            r = follow(work, args.follow_seconds, args.rate)
            print(f"following a live run ({r['records_per_s']:.0f} step records/s + GPU every 2 s) for "
                  f"{r['seconds']:.0f} s: {100 * r['cpu_share_of_one_core']:.1f} % of one core   [target < 5 %]")
        if args.only in (None, "typing"):
            r = typing(work / "logs", work / "user")
            print(f"typing in the preset form: {r['form_ms']:.1f} ms CPU per key (validation and redraw), "
                  f"one-Input app {r['baseline_ms']:.1f} ms: {r['form_ms'] / r['baseline_ms']:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
