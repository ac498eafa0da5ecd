#!/usr/bin/env bash
# The GPU benchmarks of issue #13, in one script (under 8 minutes on one H100):
#   1. training images/s of the WGAN-GP step at paper size (256 px, paper networks; target ≥ 2,000 on an H100),
#   2. generation tiles/s at paper size (target ≥ 40,000 on an H100),
#   3. `rnagan evaluate` at 256 px on a larger synthetic cohort: GAN and conditioned RNA-GAN (rna-proj)
#      trained for a few minutes each at 256 px, then every metric of the suite (FID too when
#      INCEPTION_WEIGHTS names pytorch-fid's pt_inception-2015-12-05-6726825d.pth; nothing is downloaded).
# Usage: bench/gpu.sh [WORK_DIR]   (default var/bench-gpu; PYTHON overrides the interpreter)
# Every step prints its figures; the evaluation's are in WORK_DIR/eval/metrics.json and WORK_DIR/report/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
WORK=${1:-var/bench-gpu}
MINUTES=${TRAIN_MINUTES:-1.5}   # per arm; raise it when the 8-minute limit does not matter
mkdir -p "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
rnagan() { "$PY" -m training.cli "$@"; }
start=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - start )) s)"; }

stamp "device"
rnagan info

stamp "1. training throughput, paper size"
"$PY" bench/train_gan.py --image-size 256 --batch-size 64 --steps 40

stamp "2. generation throughput, paper size"
"$PY" bench/generate.py --preset paper --batch-size 512 --repeats 3

stamp "3. a larger synthetic cohort (2 tissues x 60 samples, 4096 px slides)"
CPUS=$(nproc)
[ -f "$WORK/cohort/cohort.json" ] || rnagan synth-cohort --out "$WORK/cohort" --samples-per-tissue 60 \
    --tissues Lung "Brain - Cortex" --genes 2000 --slide-size 4096 --workers "$CPUS"
[ -f "$WORK/genes.txt" ] || "$PY" -c "
from training.data.gct import iter_gct_names
open('$WORK/genes.txt', 'w').write('\n'.join(n for n, _ in iter_gct_names('$WORK/cohort/expression.gct.gz')) + '\n')"
[ -f "$WORK/prepared/report.json" ] || rnagan prepare-expression --gct "$WORK/cohort/expression.gct.gz" \
    --attributes "$WORK/cohort/sample_attributes.txt" --tissues Lung "Brain - Cortex" --genes "$WORK/genes.txt" \
    --out "$WORK/prepared" --seed 0
rnagan tile-slides "$WORK/cohort/slides" --out "$WORK/tiles.lmdb" --attributes "$WORK/cohort/sample_attributes.txt" \
    --workers "$CPUS" --no-progress
[ -f "$WORK/vae/vae.safetensors" ] || rnagan train-vae --data "$WORK/prepared" --out "$WORK/vae" --preset small \
    --epochs 60 --embedding pca

stamp "3b. GAN and rna-proj at 256 px, small networks, ${MINUTES} min each"
RUNS=()
for TISSUE in Lung "Brain - Cortex"; do
  for ARM in none rna-proj; do
    RUN="$WORK/runs/$(echo "$TISSUE" | cut -d' ' -f1 | tr A-Z a-z)-$ARM"
    EXTRA=()
    [ "$ARM" = rna-proj ] && EXTRA=(--vae "$WORK/vae" --aux-weight 1 --diversity-weight 1)
    [ -f "$RUN/generator_ema.safetensors" ] || rnagan train-gan --tiles "$WORK/tiles.lmdb" --tissue "$TISSUE" \
        --conditioning "$ARM" --expression "$WORK/prepared" --preset small --image-size 256 --epochs 100000 \
        --max-minutes "$MINUTES" --no-progress --set keep_checkpoints=100000 "${EXTRA[@]}" --out "$RUN"
    RUNS+=("$RUN")
  done
done

stamp "3c. rnagan evaluate at 256 px"
INCEPTION=()
[ -n "${INCEPTION_WEIGHTS:-}" ] && INCEPTION=(--inception-weights "$INCEPTION_WEIGHTS")
rnagan evaluate --runs "${RUNS[@]}" --tiles "$WORK/tiles.lmdb" --expression "$WORK/prepared" \
    --programs "$WORK/cohort/programs.csv" --out "$WORK/eval" --generated 2000 --tiles-per-sample 8 "${INCEPTION[@]}" --no-progress
rnagan report --eval "$WORK/eval" --out "$WORK/report/report.html"
stamp "done"
