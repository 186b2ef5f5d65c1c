#!/usr/bin/env bash
# Recipes on a GPU machine that has JAX but no TensorFlow (docs/benchmarks.md): every recipe
# and seed at once on the one GPU under KERAS_BACKEND=jax, scored along the way by the project's
# evaluator (benchmarks.recipes); the seed-1 generators of the recipes named in KEEP come back
# as .keras, for export and scoring on CPU. Needs Keras' wheels in .whl/ and, in .devdata/,
# the data (fashion-mnist/) and the evaluator's classifier.
#
#   benchmarks/gpu_recipes.sh OUT default profile seed            # the run in docs/benchmarks.md
#   SEEDS="1 2" EVAL_AT=5,10 KEEP="profile seed" LIMIT_S=480 benchmarks/gpu_recipes.sh ...
set -u
out=${1:?output folder}
profile=${2:?profile}
shift 2
recipes=("$@")
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=jax FASHION_MNIST_DIR=.devdata/fashion-mnist PYTHONUNBUFFERED=1
seeds=(${SEEDS:-1 2})
# the processes share the GPU's memory
export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.8 / ${#recipes[@]} / ${#seeds[@]}, 3))")
mkdir -p "$out"
nvidia-smi -L 2>/dev/null
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
for recipe in "${recipes[@]}"; do
  for seed in "${seeds[@]}"; do
    keep=()
    if [ "$seed" = "${seeds[0]}" ] && [[ " ${KEEP:-profile seed} " == *" $recipe "* ]]; then
      keep=(--keras-dir "$out/keras")
    fi
    timeout "${LIMIT_S:-480}" python3 -m benchmarks.recipes --profile "$profile" \
      --recipe "$recipe" --seeds "$seed" --samples "${SAMPLES:-10000}" \
      --eval-at "${EVAL_AT:-5,10,20,30,40}" --classifier .devdata/fmnist_classifier.keras \
      --json-out "$out/results.jsonl" "${keep[@]}" > "$out/${recipe}_s$seed.log" 2>&1 &
  done
done
wait
grep -h -v "^W[0-9]" "$out"/*.log | grep "^| [a-z]" | grep -v "^| recipe" | sort -u > "$out/rows.txt"
grep -l Traceback "$out"/*.log | xargs -r tail -n 20
rm -f "$out"/*.log
cat "$out/rows.txt"
