"""kronos-train export: the curves table after resumes (the points a reader should believe)."""
from __future__ import annotations

import csv
import io

from kronos_train.cli import main as cli
from kronos_train.control.events import EventWriter
from kronos_train.export import curve_points, to_csv
from kronos_train.control.runfolder import RunFolder


def step(stage, step_, loss, attempt, parts=None):
    return {"t": 1.0 + step_, "event": "step", "stage": stage, "attempt": attempt, "step": step_,
            "epoch": step_ / 4, "loss": loss, "lr": 1e-3, "grad_norm": 0.5, "parts": parts or {}}


def resumed_story():
    """Tokenizer: attempt 0 logs steps 1-6, is killed, attempt 1 resumes from its step-4
    checkpoint and logs 5-8 again with other numbers; then the basemodel stage."""
    records = [{"event": "stage_start", "stage": "tokenizer", "attempt": 0, "resumed_from": None}]
    records += [step("tokenizer", s, 10.0 - s, 0, {"recon": 1.0, "bsq": -0.1}) for s in range(1, 7)]
    records.append({"event": "val", "stage": "tokenizer", "attempt": 0, "step": 4, "epoch": 1.0, "val_loss": 7.0,
                    "best_val_loss": 7.0, "improved": True})
    records.append({"event": "stage_start", "stage": "tokenizer", "attempt": 1, "resumed_from": 4})
    records += [step("tokenizer", s, 20.0 - s, 1, {"recon": 2.0, "bsq": -0.2}) for s in range(5, 9)]
    records.append({"event": "stage_start", "stage": "basemodel", "attempt": 1, "resumed_from": None})
    records += [step("basemodel", s, 3.0, 1, {"ce_s1": 1.5}) for s in (1, 2)]
    return records


def test_points_past_the_resume_step_are_replaced_by_the_next_attempt():
    rows = curve_points(resumed_story())
    tokenizer = [(r["kind"], r["step"], r["loss"] if r["kind"] == "step" else r["val_loss"], r["attempt"])
                 for r in rows if r["stage"] == "tokenizer"]
    assert tokenizer == [("step", 1, 9.0, 0), ("step", 2, 8.0, 0), ("step", 3, 7.0, 0), ("step", 4, 6.0, 0),
                         ("val", 4, 7.0, 0), ("step", 5, 15.0, 1), ("step", 6, 14.0, 1), ("step", 7, 13.0, 1),
                         ("step", 8, 12.0, 1)]
    assert [r["stage"] for r in rows][-2:] == ["basemodel", "basemodel"]


def test_the_csv_has_fixed_columns_then_one_per_loss_part():
    table = list(csv.DictReader(io.StringIO(to_csv(curve_points(resumed_story())))))
    assert list(table[0])[:5] == ["stage", "kind", "step", "epoch", "loss"]
    assert list(table[0])[-3:] == ["part_bsq", "part_ce_s1", "part_recon"]
    val = next(r for r in table if r["kind"] == "val")
    assert (val["val_loss"], val["loss"], val["part_recon"]) == ("7.0", "", "")
    assert table[-1]["part_ce_s1"] == "1.5" and table[-1]["part_recon"] == ""


def test_export_command_writes_into_the_run_folder(logs_dir, capsys):
    run = RunFolder(logs_dir / "20260101-000000-demo")
    run.path.mkdir()
    (run.path / "config.yaml").write_text("{}\n")
    writer = EventWriter(run.events_path)
    for rec in resumed_story():
        writer.emit(rec.pop("event"), **rec)
    assert cli(["export", "last"]) == 0
    assert "10 step and 1 validation rows" in capsys.readouterr().err
    assert (run.path / "curves.csv").read_text().count("\n") == 12          # header + 11 rows
    assert cli(["export", "last", "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("stage,kind,step,")
    assert cli(["export", "nope"]) == 2
