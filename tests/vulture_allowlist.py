"""Names vulture reports as unused that are used, reviewed one by one (issue 11).

tests/test_architecture.py runs vulture on kronos_train and kronos_tui with this
file.  Add a name here only with the reason it is not dead; a name that is
really unused gets deleted instead.  (vulture reads this file, nothing runs it.)
"""
# ruff: noqa
# fmt: off

# Framework entry points are ignored by name and decorator in the test (Textual's
# on_*/action_*/compose/BINDINGS..., torch's forward); what follows are the rest.

# Config fields of the guide's kaggle_config.yaml: users write them, the official
# scripts read them, the schema must accept and keep them.
use_comet
pre_trained
use_ddp

# Fields serialised whole (dataclasses.asdict / JSON) and read by people or other tools.
file_format             # data report: which reader parsed the file
power_w                 # GPU reading: events.GPU_FIELDS, drawn by nothing yet, documented in docs/events.md
ticker_index            # submission job record

# The events contract checker: docs/events.md promises it, the contract tests run it.
validate_story

# Official KronosPredictor compatibility: attributes and the DataFrame API the official code has.
amt_vol
price_cols
vol_col
predict
s1_vocab_size
s2_vocab_size

# A window's raw rows and identity: the windows' property tests (tests/data/test_data_windows.py)
# check the normalisation and the ticker boundaries through them.
raw_window
window_info

# torch.backends.*.allow_tf32: a setting assigned for its effect.
allow_tf32

# Run state names, the run folder contract (docs/run-folder.md); kept while issue 10 reworks runfolder.
RUN_STATES
FINAL_STATES

# The fold's public state (control/summary.py): readers (status, export, the TUI) may read any of it.
started_t
ended_t
mem_gb
early_stop
schema
unknown_events

# The TUI's list of event fields it reads, checked against the schema by tests/test_events_contract.py.
FIELDS_READ

# Read by benchmarks/bench_tui.py to know when the loss plot has drawn.
has_data

# Preset editor: set when the file cannot be read (issue 12 decides how the editor shows it).
load_error

# Public helpers whose only caller outside their module is a test that pins the documented value.
rendezvous_port         # docs/cluster.md: the per-job rendezvous port rule, tested in tests/train/test_slurm.py
withheld                # tracking gate: points held until a checkpoint covers them; tests/tracking/test_sink.py

# Attributes set on objects of other libraries (read by those libraries, not by us).
plugin_name             # TensorBoard summary metadata: marks the run-tags summary as text
can_focus               # Textual: the editor's tab bar is taken out of the focus chain
NOTIFICATION_TIMEOUT    # Textual App class variable: how long toasts stay
