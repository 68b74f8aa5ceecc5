#!/usr/bin/env bash
# Builds a zoo voice from nothing on the polyglot espeak-ng teacher corpus, then scores it (docs/voices.md).
#
#   zoo/build_teacher_voice.sh WORK NAME
#
# 1. corpus: `mlms corpus build --preset polyglot-small` (every training speaker speaks 30 % of its utterances in
#    the other training languages, 12 dB below espeak-ng's level so that nothing clips);
# 2. prepare: WORLD analysis with F0_METHOD (harvest: it measures better on this data, docs/voices.md);
# 3. acoustic model: `mlms train` with early stopping on dev (EPOCHS at most, PATIENCE);
# 4. adaptation: pl with every variant of VARIANTS; the one with the lowest dev MCD over all the voice's languages
#    adapts pt-br too, and the duration model (trained with early stopping on dev) is adapted to pl and pt-br with it;
# 5. pack: `mlms zoo pack` into OUT (at most 25 MB), with the commands and wall times of every step;
# 6. report: `mlms eval-voice OUT --plots` into WORK/report.
#
# To end the acoustic training early (a machine's booking ends, say), create WORK/acoustic/STOP: the run ends after
# the epoch under way, keeping its best dev epoch, and the recipe goes on (the voice's metadata says so).
#
# Resumable: run the same command again after an interruption. A finished step leaves WORK/.done/<step> and is
# skipped; the long steps (corpus, prepare, train, adapt) resume their own work inside. WORK/rebuild.txt holds the
# commands run, WORK/timings.json the wall-clock seconds of each step (a resumed step adds up its runs, a killed one
# up to its last minute).
#
# Settings (environment): CORPUS_PRESET (polyglot-small), MODEL_PRESET (small), DURATION_PRESET (small),
# EPOCHS (30), PATIENCE (3), DURATION_EPOCHS (30), F0_METHOD (harvest), VARIANTS ("v1 v2 v3 v4"), WORKERS (2),
# SEED (0), REPORT_SENTENCES (2, held-out sentences per language in the report), OUT (zoo/NAME),
# REGISTRY (zoo/registry.json), MLMS (mlms), PYTHON (python3).
# A smoke test at tiny scale (minutes):
#   CORPUS_PRESET=polyglot-tiny MODEL_PRESET=tiny DURATION_PRESET=tiny EPOCHS=1 DURATION_EPOCHS=1 VARIANTS="v1 v3" \
#     OUT=/tmp/voice/out REGISTRY=/tmp/voice/registry.json zoo/build_teacher_voice.sh /tmp/voice tiny-test
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 WORK NAME   (settings in the environment; see the header of $0)" >&2
    exit 2
fi
WORK=$1
NAME=$2
CORPUS_PRESET=${CORPUS_PRESET:-polyglot-small}
MODEL_PRESET=${MODEL_PRESET:-small}
DURATION_PRESET=${DURATION_PRESET:-small}
EPOCHS=${EPOCHS:-30}
PATIENCE=${PATIENCE:-3}
DURATION_EPOCHS=${DURATION_EPOCHS:-30}
F0_METHOD=${F0_METHOD:-harvest}
VARIANTS=${VARIANTS:-v1 v2 v3 v4}
WORKERS=${WORKERS:-2}
SEED=${SEED:-0}
REPORT_SENTENCES=${REPORT_SENTENCES:-2}
OUT=${OUT:-zoo/$NAME}
REGISTRY=${REGISTRY:-zoo/registry.json}
MLMS=${MLMS:-mlms}
PYTHON=${PYTHON:-python3}
MAX_BYTES=$((25 * 1000 * 1000))

CORPUS=$WORK/corpus
PREPARED=$WORK/prepared
mkdir -p "$WORK/.done"
touch "$WORK/rebuild.txt"

# add_seconds NAME SECONDS: adds SECONDS to step NAME's wall time in WORK/timings.json (atomically).
add_seconds() {
    "$PYTHON" - "$WORK/timings.json" "$1" "$2" <<'EOF'
import json, os, sys
path, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
timings = json.load(open(path)) if os.path.exists(path) else {}
timings[name] = round(timings.get(name, 0.0) + seconds, 1)
timings["note"] = (
    "wall-clock seconds per step of zoo/build_teacher_voice.sh; a resumed step adds up its runs "
    "(a killed run counts up to its last minute)"
)
with open(path + ".tmp", "w") as file:
    json.dump(timings, file, indent=1)
os.replace(path + ".tmp", path)
EOF
}

# step NAME COMMAND...: runs COMMAND unless NAME is done; records the command and adds its wall time.
# While it runs, WORK/.running/NAME holds its elapsed seconds (updated every minute), so the time of a run that is
# killed (the end of a session) is counted when the step is run again.
step() {
    local name=$1
    shift
    if [ -e "$WORK/.done/$name" ]; then
        echo "== $name: done"
        return
    fi
    echo "== $name: $*"
    local heartbeat=$WORK/.running/$name started ticker status=0
    mkdir -p "$WORK/.running"
    if [ -e "$heartbeat" ]; then # an earlier run of this step was killed: count its time
        add_seconds "$name" "$(cat "$heartbeat")"
        rm -f "$heartbeat"
    fi
    started=$(date +%s)
    (while sleep 60; do
        echo $(($(date +%s) - started)) >"$heartbeat.tmp" && mv -f "$heartbeat.tmp" "$heartbeat"
    done) &
    ticker=$!
    "$@" || status=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    add_seconds "$name" $(($(date +%s) - started))
    rm -f "$heartbeat" "$heartbeat.tmp"
    if [ "$status" -ne 0 ]; then
        exit "$status"
    fi
    grep -qxF -- "$*" "$WORK/rebuild.txt" || echo "$*" >>"$WORK/rebuild.txt"
    touch "$WORK/.done/$name"
}

step corpus "$MLMS" corpus build "$CORPUS" --preset "$CORPUS_PRESET" --seed "$SEED" --workers "$WORKERS" --quiet
step prepare "$MLMS" prepare "$CORPUS" "$PREPARED" --workers "$WORKERS" --f0-method "$F0_METHOD"
step train "$MLMS" train "$PREPARED" --preset "$MODEL_PRESET" --out "$WORK/acoustic" --epochs "$EPOCHS" \
    --patience "$PATIENCE" --seed "$SEED" --quiet

# The adaptation variant that measures best for the whole voice: the lowest dev MCD over all of its languages
# (held-out, natural durations). One model speaks every language, and v2-v4 retrain the mean tower that every
# language shares on the new language's data alone, so the lowest Polish dev MSE alone can pick a variant that
# ruins the training languages (v4 here: training-language dev MCD from 3.5 to 8.3 dB; docs/voices.md).
for variant in $VARIANTS; do
    step "adapt-pl-$variant" "$MLMS" adapt "$WORK/acoustic" "$PREPARED" --language pl --speaker pl-female \
        --variant "$variant" --out "$WORK/acoustic-pl-$variant" --seed "$SEED" --quiet
done
if [ ! -e "$WORK/variants.json" ] || ! grep -q all_languages_dev_mcd_db "$WORK/variants.json"; then
    "$PYTHON" - "$WORK" $VARIANTS <<'EOF2'
import json, os, sys

from mlms_keras.training.runs import load_run
from mlms_keras.zoo.pack import held_out_acoustic_metrics

work, variants = sys.argv[1], sys.argv[2:]
pl_mse, all_mcd, pl_mcd = {}, {}, {}
for variant in variants:
    model, run = load_run(f"{work}/acoustic-pl-{variant}")
    pl_mse[variant] = run["adaptation"]["final_dev_mse"]
    metrics = held_out_acoustic_metrics(model, run["languages"], run["speakers"], f"{work}/prepared")
    all_mcd[variant], pl_mcd[variant] = metrics["all"]["mcd_db"], metrics["pl"]["mcd_db"]
best = min(all_mcd, key=all_mcd.get)
record = {"all_languages_dev_mcd_db": all_mcd, "pl_dev_mcd_db": pl_mcd, "pl_dev_mse": pl_mse, "best": best}
with open(f"{work}/variants.json.tmp", "w") as file:
    json.dump(record, file, indent=1)
os.replace(f"{work}/variants.json.tmp", f"{work}/variants.json")
EOF2
fi
BEST=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["best"])' "$WORK/variants.json")
echo "== adaptation variant: $BEST ($(cat "$WORK/variants.json" | tr -d '\n '))"
step "adapt-pt-br-$BEST" "$MLMS" adapt "$WORK/acoustic-pl-$BEST" "$PREPARED" --language pt-br \
    --speaker pt-br-female --variant "$BEST" --out "$WORK/acoustic-pl-pt-br-$BEST" --seed "$SEED" --quiet
step "duration-$BEST" "$MLMS" zoo train-duration "$PREPARED" --out "$WORK/duration-$BEST" \
    --preset "$DURATION_PRESET" --epochs "$DURATION_EPOCHS" --patience "$PATIENCE" --adapt pl,pt-br \
    --variant "$BEST" --seed "$SEED"

# Pack last, so that the voice's metadata holds every step's command and time (pack's own time is not in it).
cp "$WORK/rebuild.txt" "$WORK/commands.txt"
echo "$MLMS zoo pack --acoustic $WORK/acoustic-pl-pt-br-$BEST --duration $WORK/duration-$BEST --dataset $PREPARED" \
    "--name $NAME --out $OUT --registry $REGISTRY --commands $WORK/commands.txt --timings $WORK/timings.json" \
    >>"$WORK/commands.txt"
step pack "$MLMS" zoo pack --acoustic "$WORK/acoustic-pl-pt-br-$BEST" --duration "$WORK/duration-$BEST" \
    --dataset "$PREPARED" --name "$NAME" --out "$OUT" --registry "$REGISTRY" --commands "$WORK/commands.txt" \
    --timings "$WORK/timings.json"
SIZE=$(du -sb "$OUT" | cut -f1)
if [ "$SIZE" -gt "$MAX_BYTES" ]; then
    echo "$OUT is $SIZE bytes, over the 25 MB a zoo voice may have; use a smaller MODEL_PRESET" >&2
    exit 1
fi
echo "== $OUT: $SIZE bytes"
step report "$MLMS" eval-voice "$OUT" --out "$WORK/report" --plots --f0-method dio --per-language "$REPORT_SENTENCES"
