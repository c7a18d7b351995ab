#!/usr/bin/env bash
# Prepares what benchmarks/gpu_check.sh needs on a GPU machine that has no internet, in two git-ignored
# folders of the repository that travel with the working tree (about 2 MB together):
#
#   .whl/              wheels of what such a machine may lack: textual and its needs (the GPU panel test),
#                      einops and huggingface_hub at the official requirements.txt's versions (the official code)
#   .official/Kronos/  the official code the side-by-side benchmark imports (model/, finetune_csv/ scripts),
#                      with COMMIT naming its commit; the project cannot ship it
#
#   bash benchmarks/gpu_check_prepare.sh [GIT_DIR]
#
# Run it on a machine with PyPI. GIT_DIR: a (bare) copy of github.com/shiyu-coder/Kronos to export from;
# without it the repository is cloned from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
git_dir=${1:-}

rm -rf .whl .official
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    textual==8.2.8 mdit-py-plugins==0.7.0 platformdirs==4.14.9 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 \
    linkify-it-py==2.2.0 uc-micro-py==2.0.0 einops==0.8.1 huggingface_hub==0.33.1

mkdir -p .official/Kronos
if [ -z "$git_dir" ]; then
    git clone -q --depth 1 https://github.com/shiyu-coder/Kronos .official/clone
    git_dir=.official/clone/.git
fi
git --git-dir "$git_dir" archive HEAD model finetune_csv/finetune_tokenizer.py finetune_csv/finetune_base_model.py \
    finetune_csv/config_loader.py LICENSE | tar -x -C .official/Kronos
git --git-dir "$git_dir" rev-parse HEAD > .official/Kronos/COMMIT
rm -rf .official/clone
echo "ready: $(ls .whl | wc -l) wheels in .whl, official code $(cat .official/Kronos/COMMIT) in .official/Kronos" \
     "($(du -sh .whl .official | awk '{print $1}' | paste -sd+) )"
