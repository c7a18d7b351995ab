"""The tracking section: validation that names the field and the remedy, and the
checklist line for a tracker that is not installed."""
from __future__ import annotations

from kronos_train import tracking
from kronos_train.checks.pre import check_tracking
from kronos_train.config import from_dict


def problems(section):
    return {p.path: p for p in from_dict({"tracking": section})[1] if p.path.startswith("tracking.")}


def test_bad_tracking_values_name_the_field_and_what_is_allowed():
    found = problems({"report_to": ["tensorboard", "comet"], "publish": "sometimes", "wandb_mode": "cloud"})
    assert "unknown tracker 'comet'; allowed: tensorboard, mlflow, wandb" in found["tracking.report_to"].message
    assert found["tracking.publish"].message == "allowed: checkpointed, immediate"
    assert "online, offline" in found["tracking.wandb_mode"].message
    assert "list of names" in problems({"report_to": {"mlflow": 1}})["tracking.report_to"].message
    assert "twice" in problems({"report_to": ["mlflow", "mlflow"]})["tracking.report_to"].message
    assert problems({"mlflow_log_models": True})["tracking.mlflow_log_models"].level == "warning"


def test_one_name_is_read_as_a_list_and_the_default_tracks_nothing():
    assert from_dict({"tracking": {"report_to": "mlflow"}})[0].tracking.report_to == ["mlflow"]
    assert from_dict({})[0].tracking.report_to == [] and problems({}) == {}


def test_a_tracker_that_is_not_installed_is_a_warning_with_the_pip_line(monkeypatch):
    monkeypatch.setitem(tracking.PACKAGES, "mlflow", ("kronos_no_such_tracker", "mlflow"))
    cfg, _ = from_dict({"tracking": {"report_to": ["mlflow"]}})
    result = check_tracking(cfg)
    assert result.status == "warn" and result.detail == "not installed: mlflow"
    assert "pip install 'kronos-tui[mlflow]'" in result.hint
    assert check_tracking(from_dict({})[0]) is None


def test_turning_tracking_on_does_not_block_an_exact_resume():
    from kronos_train.config import to_dict
    from kronos_train.control.launch import _changed_fields

    before = to_dict(from_dict({})[0])
    del before["tracking"]                                  # a checkpoint written before the section existed
    after = to_dict(from_dict({"tracking": {"report_to": ["mlflow"], "publish": "immediate"}})[0])
    assert _changed_fields(before, after) == []
    after["training"]["batch_size"] = 64
    assert _changed_fields(before, after) == ["training.batch_size: 32 -> 64"]
