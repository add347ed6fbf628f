"""Training throughput: the seed article's loop vs vg_core's instrumented loop, same net and data, one process.

Three variants train the article's DeepSigmoidNet (784-1000x5-10, sigmoid, SGD lr 0.01 momentum 0.9,
batch 100) on Fashion-MNIST from Debian's dataset-fashion-mnist:

  article      the article's code as written: torchvision.datasets.FashionMNIST with
               Compose([ToTensor(), Normalize((0.5,), (0.5,))]) applied per sample,
               DataLoader(batch_size=100, shuffle=True, num_workers=2), loss.item() every step
  vg probes    vg_core.train.train(spec, probes=True): everything the app records
  vg no-probes vg_core.train.train(spec, probes=False): per-step loss and grad norms, evaluations,
               and probes only at the first and last step

Each variant is timed end to end (model build, data preparation, evaluations, probes included) on the
same number of training samples; the variants are interleaved (A B C, C B A, ...) so that a busy
machine slows them alike. The machine's float32 matmul rate on the net's own GEMM shapes is measured
too, and vg_core's useful training FLOP/s is reported as a fraction of it.

With --whole-process it times whole processes instead, start-up included, as a user waits for them:
`python bench/article.py` (the article's script) against `python -m vg_core run --dataset fashion-mnist`
(all probes on, a throwaway cache folder so that it trains), interleaved A B, B A, for 1 and 3 epochs, and
reports the CLI's training-step FLOP/s (from the run's own timings) against torch.mm on the net's GEMMs.

    python bench/throughput.py                   # 3 epochs of 60,000 samples, 2 rounds (2-core CPU: ~4.5 min)
    python bench/throughput.py --quick           # smoke run, seconds
    python bench/throughput.py --device cuda --epochs 10
    python bench/throughput.py --whole-process   # 1 and 3 epochs, 2 rounds (2-core CPU: ~7 min)
    python bench/throughput.py --whole-process --quick   # 3,000 samples, 1 epoch, 1 round
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench import article  # noqa: E402
from bench.article import BATCH, sync  # noqa: E402
from vg_core.data import DEBIAN_FASHION_DIR  # noqa: E402
from vg_core.spec import RunSpec  # noqa: E402
from vg_core.train import resolve_device, snapshot_schedule, steps_per_epoch, train  # noqa: E402

OUT_DIR = ROOT / "bench" / "out"
SIZES = [28 * 28, 1000, 1000, 1000, 1000, 1000, 10]  # the article's DeepSigmoidNet
MACS_PER_SAMPLE = sum(a * b for a, b in itertools.pairwise(SIZES))  # multiply-adds of the 6 linear layers
# Training FLOP per sample, by the usual convention: forward 2 x MACs, backward 4 x MACs (input and weight
# gradients). fc1 needs no input gradient, so the real count is 2 x 784,000 lower; biases, activations,
# the loss and the optimiser are not counted.
FLOP_PER_SAMPLE = 6 * MACS_PER_SAMPLE
VARIANTS = ("article", "vg_probes", "vg_no_probes")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


# --- the article's code (bench/article.py) ----------------------------------------------------------


def article_root() -> Path:
    """The folder torchvision's FashionMNIST class reads: Debian's files un-gzipped into <root>/FashionMNIST/raw/
    once (bench/out/, ignored by git)."""
    raw = OUT_DIR / "torchvision" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        if not (raw / stem).is_file():
            with gzip.open(DEBIAN_FASHION_DIR / f"{stem}.gz") as src, open(raw / stem, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return raw.parent.parent


# --- vg_core -------------------------------------------------------------------------------------


def vg_spec(n_train: int, epochs: int, device: torch.device) -> RunSpec:
    """The article's net and optimiser on Fashion-MNIST (n_train 0 = all 60,000)."""
    return RunSpec(
        dataset="fashion-mnist", n_train=0 if n_train >= 60_000 else n_train, epochs=epochs, device=device.type
    )


def run_vg(n_train: int, epochs: int, device: torch.device, probes: bool) -> dict:
    spec = vg_spec(n_train, epochs, device)
    sync(device)
    started = time.perf_counter()
    result = train(spec, probes=probes)
    sync(device)
    seconds = time.perf_counter() - started
    timings = result.meta["timings"]
    return {
        "seconds": seconds,
        "final_train_loss": float(result.history["train_loss"].iloc[-1]),
        "snapshots": len(result.snapshot_steps),
        "setup_s": timings["setup_s"],
        "eval_s": timings["eval_s"],
        "probe_s": timings["probe_s"],
    }


# --- the machine's matmul rate ---------------------------------------------------------------------


def _time_repeated(fn, device: torch.device, min_seconds: float) -> float:
    """Seconds per call of fn, repeated for at least min_seconds after a warm-up."""
    fn()
    sync(device)
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        if calls % 5 == 0:
            sync(device)
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                return elapsed / calls


def matmul_rates(device: torch.device, min_seconds: float) -> dict:
    """Sustained float32 torch.mm GFLOP/s: the GEMMs of one training step of the net, and a large square one.

    One training step of batch B runs, per linear layer (in -> out): forward (B,in)@(in,out), weight gradient
    (out,B)@(B,in) and, except fc1, input gradient (B,out)@(out,in), with the transposes autograd uses.
    Outputs are preallocated, so this is the matmul work alone: a ceiling for the training loop.
    """
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    gemms, flop = [], 0
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES)):
        x, weight, grad = rand(BATCH, fan_in), rand(fan_out, fan_in), rand(BATCH, fan_out)
        gemms.append((x, weight.t(), torch.empty(BATCH, fan_out, device=device)))  # forward
        gemms.append((grad.t(), x, torch.empty(fan_out, fan_in, device=device)))  # weight gradient
        flop += 2 * 2 * BATCH * fan_in * fan_out
        if index > 0:
            gemms.append((grad, weight, torch.empty(BATCH, fan_in, device=device)))  # input gradient
            flop += 2 * BATCH * fan_in * fan_out

    def step_gemms():
        for a, b, out in gemms:
            torch.mm(a, b, out=out)

    n = 2048
    a, b, out = rand(n, n), rand(n, n), torch.empty(n, n, device=device)
    net_seconds = _time_repeated(step_gemms, device, min_seconds)
    square_seconds = _time_repeated(lambda: torch.mm(a, b, out=out), device, min_seconds)
    return {
        "net_gemms_gflops": flop / net_seconds / 1e9,
        "square_2048_gflops": 2 * n**3 / square_seconds / 1e9,
    }


# --- the benchmark --------------------------------------------------------------------------------


def measure(args: argparse.Namespace, device: torch.device) -> dict:
    trainset = article.trainset(str(article_root()), args.n_train)
    n_train = len(trainset)
    samples = n_train * args.epochs
    run = {
        "article": lambda: article.run(trainset, args.epochs, device, seed=0),
        "vg_probes": lambda: run_vg(n_train, args.epochs, device, probes=True),
        "vg_no_probes": lambda: run_vg(n_train, args.epochs, device, probes=False),
    }
    # Warm-up (not timed): reads and caches the data, starts the thread pools, loads kernels.
    article.run(torch.utils.data.Subset(trainset, range(1000)), 1, device, seed=0)
    run_vg(1000, 1, device, probes=True)

    rounds = interleaved(run, args.repeats, lambda timing: f"{samples / timing['seconds']:8.0f} samples/s")
    return {
        **machine(device),
        "n_train": n_train,
        "epochs": args.epochs,
        "samples_per_variant": samples,
        "repeats": args.repeats,
        "matmul": matmul_rates(device, args.matmul_seconds),
        "rounds": rounds,
    }


def interleaved(run: dict[str, Callable[[], dict]], repeats: int, shown: Callable[[dict], str]) -> list[dict]:
    """`repeats` rounds of every variant, in order and then reversed (A B C, C B A, ...), so that load from other
    processes hits them alike; each round's timings by variant, with the load average before each."""
    rounds: list[dict] = []
    for index in range(repeats):
        timing = {}
        for name in list(run) if index % 2 == 0 else list(run)[::-1]:
            load = os.getloadavg()[0]
            timing[name] = {**run[name](), "load_average_1min_before": load}
            print(f"  round {index + 1}: {name:<18} {shown(timing[name])}", flush=True)
        rounds.append(timing)
    return rounds


def machine(device: torch.device) -> dict:
    """What the figures were measured on."""
    return {
        "device": str(device),
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def figures(raw: dict) -> dict:
    """The reported figures, from what `measure` recorded (also used to re-render a saved JSON)."""
    samples, rounds, matmul = raw["samples_per_variant"], raw["rounds"], raw["matmul"]
    # The fastest round of each variant: load from other processes only ever slows a run down, so the
    # fastest is the least disturbed (the article's own DataLoader workers are part of every article round).
    rates = {name: max(samples / r[name]["seconds"] for r in rounds) for name in VARIANTS}
    medians = {name: statistics.median(samples / r[name]["seconds"] for r in rounds) for name in VARIANTS}
    vg_flops = rates["vg_probes"] * FLOP_PER_SAMPLE
    probe_runs = [r["vg_probes"] for r in rounds]
    per_snapshot = min(r["probe_s"] / r["snapshots"] for r in probe_runs)
    # The article's full run (60,000 samples x 10 epochs) has more steps per snapshot than a short benchmark
    # run; project its probe cost from this run's measured seconds per snapshot and per sample without probes.
    full_snapshots = len(snapshot_schedule(steps_per_epoch(60_000, BATCH), 10))
    full_off_seconds = 600_000 / rates["vg_no_probes"]
    fastest_probe_run = min(probe_runs, key=lambda r: r["seconds"])
    return {
        **raw,
        "samples_per_s": rates,
        "samples_per_s_median": medians,
        "vg_probes_over_article": rates["vg_probes"] / rates["article"],
        "vg_no_probes_over_article": rates["vg_no_probes"] / rates["article"],
        "probes_on_over_off": rates["vg_probes"] / rates["vg_no_probes"],
        "probe_cost": 1 - rates["vg_probes"] / rates["vg_no_probes"],
        "probe_seconds_per_snapshot": per_snapshot,
        "snapshots_this_run": probe_runs[0]["snapshots"],
        "projected_probe_cost_article_run": (full_snapshots - 2) * per_snapshot / full_off_seconds,
        "flop_per_sample": FLOP_PER_SAMPLE,
        "vg_probes_gflops": vg_flops / 1e9,
        "fraction_of_net_gemm_rate": vg_flops / 1e9 / matmul["net_gemms_gflops"],
        "fraction_of_square_gemm_rate": vg_flops / 1e9 / matmul["square_2048_gflops"],
        "vg_probes_seconds_breakdown": {
            key: fastest_probe_run[key] for key in ("seconds", "setup_s", "eval_s", "probe_s")
        },
        "load_average_1min": [r[name]["load_average_1min_before"] for r in rounds for name in VARIANTS],
    }


def table(r: dict) -> str:
    rates = r["samples_per_s"]
    mm = r["matmul"]
    b = r["vg_probes_seconds_breakdown"]
    lines = [
        f"Fashion-MNIST, {r['n_train']:,} samples x {r['epochs']} epoch(s) per variant, fastest of {r['repeats']} "
        f"interleaved rounds; {r['device']} ({r['device_name']}, {r['cpu_count']} CPUs), torch {r['torch']}, "
        f"{r['threads']} threads; 1-minute load average before the runs {min(r['load_average_1min']):.1f} to "
        f"{max(r['load_average_1min']):.1f}.",
        "",
        "| variant | samples/s | vs article |",
        "| --- | ---: | ---: |",
        f"| article loop (DataLoader, per-sample transforms, num_workers=2) | {rates['article']:,.0f} | 1.00x |",
        f"| vg_core, probes on | {rates['vg_probes']:,.0f} | {r['vg_probes_over_article']:.2f}x |",
        f"| vg_core, probes off | {rates['vg_no_probes']:,.0f} | {r['vg_no_probes_over_article']:.2f}x |",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| probes on / probes off | {r['probes_on_over_off']:.3f} (cost {r['probe_cost']:.1%}, "
        f"{r['snapshots_this_run']} snapshots) |",
        f"| probe pass, seconds per snapshot | {r['probe_seconds_per_snapshot']:.3f} |",
        f"| vg_core with probes: seconds in all / setup / test evaluations / snapshots | {b['seconds']:.1f} / "
        f"{b['setup_s']:.1f} / {b['eval_s']:.1f} / {b['probe_s']:.1f} |",
        f"| projected probe cost of the article's 60,000 x 10-epoch run (29 snapshots) | "
        f"{r['projected_probe_cost_article_run']:.1%} |",
        f"| float32 matmul, the net's GEMM shapes (batch 100) | {mm['net_gemms_gflops']:,.1f} GFLOP/s |",
        f"| float32 matmul, 2048x2048 square | {mm['square_2048_gflops']:,.1f} GFLOP/s |",
        f"| vg_core with probes, useful training FLOP/s (6 x {MACS_PER_SAMPLE:,} MAC x samples/s) | "
        f"{r['vg_probes_gflops']:,.1f} GFLOP/s |",
        f"| ... as a fraction of the net-shaped matmul rate | {r['fraction_of_net_gemm_rate']:.0%} |",
        f"| ... as a fraction of the square matmul rate | {r['fraction_of_square_gemm_rate']:.0%} |",
    ]
    return "\n".join(lines)


# --- whole processes, as a user waits for them ------------------------------------------------------


WHOLE_EPOCHS = (1, 3)
WHOLE_VARIANTS = ("article_process", "cli_process")


def _time_process(command: list[str]) -> float:
    """Wall seconds of one child process, from spawn to exit (start-up and imports included)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds


def run_article_process(n_train: int, epochs: int) -> dict:
    """`python bench/article.py`: the article's script, torchvision's DataLoader and all."""
    command = [sys.executable, str(ROOT / "bench" / "article.py"), "--root", str(article_root())]
    return {"seconds": _time_process([*command, "--epochs", str(epochs), "--n-train", str(n_train)])}


def run_cli_process(n_train: int, epochs: int) -> dict:
    """`python -m vg_core run` on a throwaway cache folder, so it trains (all probes on), progress bar included;
    the run's own timings come from the meta.json it stores."""
    with tempfile.TemporaryDirectory(prefix="vg-bench-cache-") as cache:
        command = [sys.executable, "-m", "vg_core", "run", "--dataset", "fashion-mnist", "--epochs", str(epochs)]
        command += ["--cache-dir", cache] + (["--n-train", str(n_train)] if n_train < 60_000 else [])
        seconds = _time_process(command)
        metas = list(Path(cache).glob("*/meta.json"))
        if len(metas) != 1:
            raise RuntimeError(f"the CLI left {len(metas)} results in {cache}, not one")
        meta = json.loads(metas[0].read_text())
    timings = meta["timings"]
    return {
        "seconds": seconds,
        "status": meta["status"],
        "run_total_s": timings["total_s"],
        "setup_s": timings["setup_s"],
        "eval_s": timings["eval_s"],
        "probe_s": timings["probe_s"],
        # the training steps alone: forward, backward, per-step log, optimiser, progress callback
        "steps_s": timings["total_s"] - timings["setup_s"] - timings["eval_s"] - timings["probe_s"],
    }


def measure_whole(args: argparse.Namespace) -> dict:
    """Both whole processes, interleaved (A B, B A, ...) for each run length, then torch.mm's rates here."""
    device = torch.device("cpu")
    run = {"article_process": run_article_process, "cli_process": run_cli_process}
    rounds: list[dict] = []
    for index in range(args.repeats):
        order = WHOLE_VARIANTS if index % 2 == 0 else WHOLE_VARIANTS[::-1]
        timing: dict = {}
        for epochs in args.whole_epochs:
            timing[str(epochs)] = {}
            for name in order:
                load = os.getloadavg()[0]
                timing[str(epochs)][name] = {**run[name](args.n_train, epochs), "load_average_1min_before": load}
                print(
                    f"  round {index + 1}: {epochs} epoch(s) {name:<15} {timing[str(epochs)][name]['seconds']:6.1f} s",
                    flush=True,
                )
        rounds.append(timing)
    return {
        "mode": "whole_process",
        **machine(device),
        "n_train": args.n_train,
        "epochs": list(args.whole_epochs),
        "repeats": args.repeats,
        "matmul": matmul_rates(device, args.matmul_seconds),
        "rounds": rounds,
    }


def whole_figures(raw: dict) -> dict:
    """Per run length: each process's fastest round, the ratio, and the CLI's training-step FLOP/s."""
    per_length = {}
    for epochs in raw["epochs"]:
        runs = [r[str(epochs)] for r in raw["rounds"]]
        fastest = {name: min(run[name]["seconds"] for run in runs) for name in WHOLE_VARIANTS}
        cli = min((run["cli_process"] for run in runs), key=lambda r: r["seconds"])
        best_steps = min(run["cli_process"]["steps_s"] for run in runs)
        step_gflops = FLOP_PER_SAMPLE * raw["n_train"] * epochs / best_steps / 1e9
        per_length[str(epochs)] = {
            "seconds": fastest,
            "cli_over_article": fastest["article_process"] / fastest["cli_process"],
            "cli_over_article_median": statistics.median(
                run["article_process"]["seconds"] / run["cli_process"]["seconds"] for run in runs
            ),
            "fastest_cli_breakdown": {
                k: cli[k] for k in ("seconds", "run_total_s", "setup_s", "eval_s", "probe_s", "steps_s")
            },
            "cli_step_gflops": step_gflops,
            "cli_step_fraction_of_net_gemm_rate": step_gflops / raw["matmul"]["net_gemms_gflops"],
        }
    loads = [run[name]["load_average_1min_before"] for r in raw["rounds"] for run in r.values() for name in run]
    return {**raw, "per_length": per_length, "load_average_1min": loads}


def whole_table(r: dict) -> str:
    mm = r["matmul"]
    lines = [
        f"Fashion-MNIST, {r['n_train']:,} samples per epoch, whole processes (start-up included), fastest of "
        f"{r['repeats']} interleaved rounds; {r['device_name']} ({r['cpu_count']} CPUs), torch {r['torch']}; "
        f"1-minute load average before the runs {min(r['load_average_1min']):.1f} to "
        f"{max(r['load_average_1min']):.1f}. torch.mm on the net's GEMM shapes: {mm['net_gemms_gflops']:,.1f} "
        f"GFLOP/s ({r['threads']} threads).",
        "",
        "| epochs | article script, s | `python -m vg_core run`, s | CLI vs article (median) | CLI run: setup / "
        "evaluations / probes / steps, s | CLI training steps, GFLOP/s (of torch.mm) |",
        "| ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for epochs, f in r["per_length"].items():
        b = f["fastest_cli_breakdown"]
        lines.append(
            f"| {epochs} | {f['seconds']['article_process']:.1f} | {f['seconds']['cli_process']:.1f} | "
            f"{f['cli_over_article']:.2f}x ({f['cli_over_article_median']:.2f}x) | {b['setup_s']:.1f} / "
            f"{b['eval_s']:.1f} / {b['probe_s']:.1f} / {b['steps_s']:.1f} | {f['cli_step_gflops']:,.1f} "
            f"({f['cli_step_fraction_of_net_gemm_rate']:.0%}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, "cpu", "throughput")
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="time `python bench/article.py` against `python -m vg_core run` as whole processes (CPU), "
        "for 1 and 3 epochs",
    )
    args = parser.parse_args(argv)
    if args.render:
        raw = json.loads(Path(args.render).read_text())
        print(whole_table(whole_figures(raw)) if raw.get("mode") == "whole_process" else table(figures(raw)))
        return 0
    args.whole_epochs = (1,) if quick(args) else WHOLE_EPOCHS
    device = resolve_device("cpu" if args.whole_process else args.device)
    started = time.perf_counter()
    result = whole_figures(measure_whole(args)) if args.whole_process else figures(measure(args, device))
    result["benchmark_seconds"] = time.perf_counter() - started
    save(args, "throughput", "whole-process" if args.whole_process else device.type, result)
    print(whole_table(result) if args.whole_process else table(result))
    return 0


def benchmark_parser(doc: str, device: str, name: str) -> argparse.ArgumentParser:
    """The flags this script shares with bench/side_by_side.py; `name` names the JSON file."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--device", default=device, help=f"cpu | cuda | auto (default {device})")
    parser.add_argument("--n-train", type=int, default=60_000, help="training samples per epoch (default 60000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds of the variants (default 2)")
    parser.add_argument("--matmul-seconds", type=float, default=3.0, help="time per matmul measurement")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 samples, 1 epoch, 1 round")
    parser.add_argument("--out", default=None, help=f"JSON file (default bench/out/{name}-<device>.json)")
    parser.add_argument("--render", metavar="JSON", default=None, help="print the table of a saved run and exit")
    return parser


def quick(args: argparse.Namespace) -> bool:
    """--quick's smaller run set on `args`; whether it was asked for."""
    if args.quick:
        args.n_train, args.epochs, args.repeats, args.matmul_seconds = 3000, 1, 1, 0.5
    return args.quick


def save(args: argparse.Namespace, name: str, device: str, result: dict) -> None:
    """The figures as JSON in --out (default bench/out/<name>-<device>[-quick].json); says where."""
    out = Path(args.out) if args.out else OUT_DIR / f"{name}-{device}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\n{result['benchmark_seconds']:.0f} s in all; figures in {out}\n")


if __name__ == "__main__":
    sys.exit(main())
