#!/usr/bin/env bash
# What a GPU machine is for, in one command: the CUDA tests, then bench/side_by_side.py and bench/throughput.py
# on the GPU. Logs and figures go to $OUT where it is set, else bench/out/.
#
# The machine needs Python with torch, torchvision, pandas, pyarrow, tqdm, filelock and pytest (with
# pytest-xdist). What it lacks travels in .gpu/ (ignored by git), made here beforehand:
#   .gpu/whl/             wheels installed into /tmp/site (babel and mlxtend, say)
#   .gpu/fashion-mnist/   Debian's Fashion-MNIST files, copied to /usr/share/datasets/fashion-mnist/
# bench/README.md ("On a GPU machine") has the commands that make it.
#
#   bash bench/gpu.sh           # ~5 min on an H200
#   bash bench/gpu.sh --quick   # smoke run of the same steps (seconds per benchmark; CPU if there is no GPU)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

if compgen -G ".gpu/whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu/whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
fashion=/usr/share/datasets/fashion-mnist
if [ -d .gpu/fashion-mnist ] && [ ! -f "$fashion/train-images-idx3-ubyte.gz" ]; then
    mkdir -p "$fashion" && cp .gpu/fashion-mnist/*.gz "$fashion/" || exit 1
fi

if [ "${1:-}" = "--quick" ]; then
    device=auto
    side_by_side=(--quick)
    throughput=(--quick)
else
    device=cuda
    side_by_side=()
    throughput=(--epochs 3 --repeats 1)
fi

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"; } \
    | tee "$out/gpu-machine.txt"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$out/gpu-machine.txt"
status=0
"$python" -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_side_by_side.py tests/test_probes.py 2>&1 \
    | tee "$out/gpu-tests.log" || status=1
"$python" bench/side_by_side.py --device "$device" "${side_by_side[@]}" --out "$out/side-by-side.json" 2>&1 \
    | tee "$out/side-by-side.log" || status=1
"$python" bench/throughput.py --device "$device" "${throughput[@]}" --out "$out/throughput.json" 2>&1 \
    | tee "$out/throughput.log" || status=1
exit $status
