"""Presets and the editor: switch, new, edit (form and YAML), save-as, diff, import."""
from __future__ import annotations

import yaml

from kronos_tui.screens.editor import PresetEditor
from tui_helpers import type_into, wait_for, wait_text

KAGGLE_CONFIG = """\
# the user's own file, official finetune_csv layout
data:
  data_path: "/data/train_combined.csv"
  lookback_window: 256
  predict_window: 1
  max_context: 512
  clip: 5.0
  train_ratio: 0.9
  val_ratio: 0.1
training:
  tokenizer_epochs: 20
  basemodel_epochs: 15
  batch_size: 32
  tokenizer_learning_rate: 0.0002
  predictor_learning_rate: 0.00004
  accumulation_steps: 1
model_paths:
  pretrained_tokenizer: "/models/Kronos-Tokenizer-base"
  pretrained_predictor: "/models/Kronos-small"
"""


async def open_list(pilot, name: str) -> None:
    """Highlight ``name`` in the preset list."""
    screen = pilot.app.screen
    names = [i.name for i in screen.infos]
    screen.query_one("#preset-list").highlighted = names.index(name)
    await pilot.pause(0.1)


async def open_editor(pilot, name: str | None = None, key: str = "e") -> PresetEditor:
    """Highlight ``name`` (else keep the selected preset) and open it in the form (``e``) or YAML (``y``)."""
    await wait_text(pilot, "preset demo")
    if name is not None:
        await open_list(pilot, name)
    await pilot.press(key)
    return await wait_for(pilot, lambda: isinstance(pilot.app.screen, PresetEditor) and pilot.app.screen)


async def test_switching_preset_is_one_key(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await pilot.press("down")                       # kaggle
        await wait_text(pilot, "kaggle.yaml")         # the detail follows the highlight
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.selected_preset == "kaggle")
        text = await wait_text(pilot, "preset kaggle")
        assert "▶ kaggle" in text


async def test_detail_shows_extends_chain_and_effective_batch(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await open_list(pilot, "kaggle-8gpu")
        text = await wait_text(pilot, "extends  kaggle")
        assert "32 × 8 GPU × acc 1 = 256" in text and "8 GPUs (nccl)" in text
        assert "tokenizer fine-tuned from" in text
        assert "           ./pretrained/Kronos-Tokenizer-base" in text      # the path whole, on its own line


async def test_a_from_scratch_cpu_preset_says_what_is_built_and_where(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_text(pilot, "tokenizer from scratch: tiny-tokenizer")
        assert "predictor from scratch: tiny-predictor" in text
        assert "1 CPU worker process (gloo)" in text and "32 × 1 process × acc 1" in text and "GPU" not in text


async def test_a_click_on_a_preset_selects_it(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        assert await pilot.click("#preset-list", offset=(5, 3))    # the 4th line: low-memory
        await wait_text(pilot, "lookback 128")
        await wait_for(pilot, lambda: app.selected_preset == "low-memory")


async def test_new_preset_extends_the_highlighted_one(make_app, services):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await open_list(pilot, "kaggle")
        await pilot.press("n")
        await wait_text(pilot, "New preset extending kaggle")
        await type_into(pilot, "my exp")
        await pilot.press("enter")
        await wait_text(pilot, "letters, digits")               # a space is refused, said beside the field
        await type_into(pilot, "my-exp")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="editor opens")
        path = services.user_presets_dir / "my-exp.yaml"
        assert yaml.safe_load(path.read_text()) == {"extends": "kaggle"}
        assert app.selected_preset == "my-exp", "the new preset is the selected one"
        await pilot.press("escape")
        text = await wait_text(pilot, "▶ my-exp")
        assert "›▶ my-exp" in text                           # the cursor mark is on it as well


async def test_the_cursor_row_is_marked_without_colour(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_text(pilot, "›▶ demo")
        await pilot.press("down")
        text = await wait_text(pilot, "›  kaggle")
        assert " ▶ demo" in text and text.count("›") == 1


async def test_the_first_tab_in_the_form_lands_on_a_field(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot)
        first = editor.focused
        await pilot.press("tab")
        assert first is not None and first.id.startswith("f-")
        assert editor.focused is not first and editor.focused.id.startswith("f-"), "a field, not the tab bar"


async def test_form_validates_as_you_type_with_the_schema_messages(make_app, services):
    (services.user_presets_dir / "mine.yaml").write_text("extends: demo\ntraining:\n  batch_size: 16\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, "mine")
        box = editor.query_one("#f-training--batch_size")
        assert box.value == "16"
        box.focus()
        await pilot.press("ctrl+u", "0")
        text = await wait_text(pilot, "must be at least 1")
        assert "✗ 1 error(s)" in text
        await type_into(pilot, "abc")
        await wait_text(pilot, "expected a whole number")
        window = editor.query_one("#f-data--lookback_window")
        await type_into(pilot, "100", window)                 # 100 + 5 > max_context 64 of demo
        await wait_text(pilot, "exceeds max_context")
        await type_into(pilot, "32", window)
        await type_into(pilot, "8", box)
        await wait_text(pilot, "✓ valid")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.dirty, what="saved")
        saved = yaml.safe_load((services.user_presets_dir / "mine.yaml").read_text())
        assert saved == {"extends": "demo", "training": {"batch_size": 8}, "data": {"lookback_window": 32}}


async def test_emptying_a_field_inherits_again(make_app, services):
    (services.user_presets_dir / "mine.yaml").write_text("extends: demo\ntraining:\n  batch_size: 16\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, "mine")
        editor.query_one("#f-training--batch_size").focus()
        await pilot.press("ctrl+u")
        await pilot.pause(0.1)
        assert editor.raw == {"extends": "demo"}


async def test_yaml_tab_is_highlighted(make_app, services):
    """textual[syntax] is a dependency: the raw YAML is shown with tree-sitter highlighting."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, key="y")
        area = editor.query_one("#yaml-text")
        assert area.language == "yaml" and area.is_syntax_aware
        assert area.border_subtitle != "plain text (no tree-sitter)"


async def test_yaml_tab_shows_parse_errors_beside_the_text_and_keeps_comments(make_app, services):
    (services.user_presets_dir / "mine.yaml").write_text("# my notes\nextends: demo\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        editor = await open_editor(pilot, "mine", key="y")
        area = editor.query_one("#yaml-text")
        area.load_text("# my notes\nextends: demo\ntraining:\n  batch_size: [1\n")
        text = await wait_text(pilot, "YAML does not parse")
        assert "line 5" in text or "line 4" in text
        area.load_text("# my notes\nextends: demo\ntraining:\n  batch_sise: 8\n")
        await wait_text(pilot, "did you mean 'batch_size'")
        area.load_text("# my notes\nextends: demo\ntraining:\n  batch_size: 8\n")
        await wait_text(pilot, "✓ valid")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.dirty)
        assert (services.user_presets_dir / "mine.yaml").read_text().startswith("# my notes\n")
        await pilot.press("f5")
        text = await wait_text(pilot, "training.batch_size")
        assert "32" in text and "8" in text


async def test_a_bundled_preset_saves_as_a_copy(make_app, services):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot)
        assert editor.read_only
        await pilot.press("ctrl+s")
        await wait_text(pilot, "Save preset as")
        await type_into(pilot, "demo-copy")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (services.user_presets_dir / "demo-copy.yaml").exists())
        await pilot.press("escape")
        await wait_text(pilot, "demo-copy (user)")


async def test_closing_with_unsaved_changes_asks(make_app, services):
    (services.user_presets_dir / "mine.yaml").write_text("extends: demo\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, "mine")
        editor.query_one("#f-training--seed").focus()
        await pilot.press("ctrl+u", "7")
        await pilot.press("escape")
        await wait_text(pilot, "Discard changes?")
        await pilot.press("n")
        assert isinstance(app.screen, PresetEditor)
        await pilot.press("escape")
        await wait_text(pilot, "Discard changes?")
        await pilot.press("y")
        await wait_text(pilot, "[1 Presets]")
        assert (services.user_presets_dir / "mine.yaml").read_text() == "extends: demo\n"


async def test_diff_against_the_parent(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await open_list(pilot, "low-memory")
        await pilot.press("d")
        text = await wait_text(pilot, "low-memory vs kaggle")
        assert "data.lookback_window" in text and "256" in text and "128" in text
        assert "training.batch_size" in text
        await pilot.press("escape")
        await wait_text(pilot, "[1 Presets]")


async def test_import_an_existing_kaggle_config(make_app, services, tmp_path):
    source = tmp_path / "kaggle_config.yaml"
    source.write_text(KAGGLE_CONFIG)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await pilot.press("i")
        await wait_text(pilot, "Import a kaggle_config.yaml")
        await type_into(pilot, str(tmp_path / "missing.yaml"))
        await wait_text(pilot, "no file")
        await type_into(pilot, str(source))
        await pilot.press("enter")
        await wait_text(pilot, "Name of the imported preset")
        await pilot.press("enter")                       # the suggested name: kaggle-config
        await wait_for(pilot, lambda: app.selected_preset == "kaggle-config")
        target = services.user_presets_dir / "kaggle-config.yaml"
        assert target.read_text() == KAGGLE_CONFIG         # copied as is, comments included
        text = await wait_text(pilot, "▶ kaggle-config")
        assert "/data/train_combined.csv" in text


async def test_broken_yaml_in_a_preset_folder_is_a_message_not_a_traceback(make_app, services):
    (services.user_presets_dir / "broken.yaml").write_text("data: [unclosed\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await open_list(pilot, "broken")
        await wait_text(pilot, "error(s)")
        detail = str(app.screen.query_one("#preset-detail").render())
        assert "line 2, column 1" in detail and "fix the YAML syntax" in detail
