"""Page benchmark: the real app in a real browser, timed. `python bench/page_bench.py [--article]`.

First the floor: bench/bare_app.py (imports torch, streamlit and altair, draws one Altair chart), started and
visited exactly like the app. Then `streamlit run app.py` on a free port with an empty result cache, opened in
headless chromium (playwright), for the default preset:
  first_chart_s   page opened -> the first Vega chart drawn (cold result cache: the runs train live)
  trained_s       page opened -> the last run's progress bar at its last step, or gone (as the browser shows it)
  complete_s      page opened -> every run trained and the finished page drawn (app idle, all charts)
  revisit         a second visit to the same URL (cached) -> first chart, complete
  scrub_s, grad_s a key press on the step scrubber / a click on the other gradient view -> the last chart
                  changed (median of a few, on the cached page)
  rss_mb          the Streamlit process's resident memory afterwards (and its peak, from /proc)
  live_lag        one longer run (5x512 sigmoid, 20,000 Fashion-MNIST images, 3 epochs) watched while it trains:
                  how many seconds the step its charts show (the verdicts' "at step N") trails the progress bar
  default_training_alone_s  the default preset's runs trained in a bare process, no page (the least a cold
                  visit can spend training; imports and data reading not timed)
Both servers start cold (a fresh process: the imports count). With --article it then opens the article preset
and reports the same (MNIST falls back to the 5,000-digit mnist-sample offline; the page says so).
Helpers here are reused by tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHART = '[data-testid="stVegaLiteChart"]'
DRAWN_CHART = f"{CHART} svg.marks, {CHART} canvas.marks"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'


def charts_per_page(runs: int, opened: bool = False) -> int:
    """Charts on a finished page: gradient flow, loss and accuracy; with every folded section `opened` (the
    sweep's aside), also activation std and 7 per run: gradients, activations, ratios, heatmap, article,
    activations and input percentiles over training."""
    return 3 + (1 + 7 * runs if opened else 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    pid: int
    log: Path  # the server's stdout and stderr

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def streamlit_server(
    cache_dir: Path, port: int | None = None, env: dict | None = None, app: str = "app.py"
) -> Iterator[Server]:
    """`streamlit run app.py` (or another page of the repo) headless on a free local port, until the block ends."""
    port = port or free_port()
    environment = {**os.environ, "VG_CACHE_DIR": str(cache_dir), **(env or {})}
    command = [sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    handle, name = tempfile.mkstemp(prefix="streamlit-", suffix=".log")
    os.close(handle)
    log = Path(name)
    with log.open("w") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("streamlit did not start within 60 s")
        yield Server(f"http://127.0.0.1:{port}", process.pid, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian chromium driven by playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_idle(page, charts: int | None = None, timeout_s: float = 120, settle_s: float = 1.0, poll=None) -> float:
    """Wait until the script is not running (for `settle_s` in a row) and, if given, `charts` charts are drawn
    (`poll()`, if given, is called on each look). Returns the moment (time.monotonic) it first became so."""
    deadline = time.monotonic() + timeout_s
    since = None
    while time.monotonic() < deadline:
        if poll is not None:
            poll()
        idle = page.locator(IDLE).count() == 1
        drawn = page.locator(DRAWN_CHART).count()
        if idle and (charts is None or drawn >= charts):
            since = since or time.monotonic()
            if time.monotonic() - since >= settle_s:
                return since
        else:
            since = None
        page.wait_for_timeout(100)
    raise TimeoutError(f"app not idle with {charts} charts after {timeout_s} s ({page.locator(DRAWN_CHART).count()})")


def wait_first_chart(page, timeout_s: float = 60) -> float:
    page.wait_for_selector(DRAWN_CHART, state="attached", timeout=timeout_s * 1000)
    return time.monotonic()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(parent, []).append(int(entry.name))
    return tree


def cpu_s(pid: int, skip: int | None = None) -> float:
    """User+system CPU seconds of a process and its live descendants (not the `skip` subtree), from /proc:
    unlike wall time, this does not grow when other work shares the machine."""
    tree, total, todo = _children(), 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        if current == skip:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (Path("/proc") / str(current) / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        todo.extend(tree.get(current, []))
    return total


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MiB of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its own container: grow the viewport to the content, then shoot."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebarContent]')]"
        ".map(e => e.scrollHeight), document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": page.viewport_size["width"], "height": min(int(height) + 40, 16000)})
    page.wait_for_timeout(1500)  # charts re-fit their new width/height
    page.screenshot(path=str(path), full_page=True)


PROGRESS = re.compile(r"step ([\d,]+) of ([\d,]+)")
SHOWN_STEP = re.compile(r"at step ([\d,]+)")  # in the verdicts: the step the charts show
LAG_QUERY = "/?preset=activations&run2=off&run3=off&dataset=fashion-mnist&n_train=20000&width=512&epochs=3"
# Every change inside a chart, timed in the page (performance.now()): when the last chart finished redrawing.
WATCH_CHARTS = """chart => {
  window.vgChartChanged = 0;
  new MutationObserver(records => {
    if (records.some(r => (r.target.closest ? r.target : r.target.parentElement)?.closest(chart)))
      window.vgChartChanged = performance.now();
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def visit(
    browser,
    url: str,
    charts: int,
    timeout_s: float,
    screenshot: Path | None = None,
    server_pid: int | None = None,
    interact: bool = False,
) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    server_cpu = cpu_s(server_pid) if server_pid else 0.0
    browser_cpu = cpu_s(os.getpid(), skip=server_pid)
    started = time.monotonic()
    page.goto(url)
    first = wait_first_chart(page, timeout_s)
    trained = [None]  # when the last progress bar reached its last step, or went away, as the browser showed it

    def watch_bars() -> None:
        bars = [PROGRESS.search(text) for text in page.locator('[data-testid="stProgress"]').all_inner_texts()]
        bars = [bar for bar in bars if bar]
        if any(bar.group(1) != bar.group(2) for bar in bars):
            trained[0] = started - 1  # a bar still moving: not done yet
        elif bars or trained[0] == started - 1:  # at its last step, or gone since the last look (a fast finish)
            trained[0] = time.monotonic() if trained[0] is None or trained[0] < started else trained[0]

    done = wait_idle(page, charts, timeout_s, poll=watch_bars)
    if page.locator(EXCEPTION).count():
        raise RuntimeError("the page shows an exception")
    timing = {
        "first_chart_s": round(first - started, 2),
        "trained_s": round(trained[0] - started, 2) if trained[0] and trained[0] >= started else None,
        "complete_s": round(done - started, 2),
        "server_cpu_s": round(cpu_s(server_pid) - server_cpu, 2) if server_pid else None,
        "browser_cpu_s": round(cpu_s(os.getpid(), skip=server_pid) - browser_cpu, 2),
        "load_avg_1min": os.getloadavg()[0],
    }
    if interact:
        timing.update(interactions(page))
    if screenshot:
        full_page_screenshot(page, screenshot)
    page.close()
    return timing


def redraw_s(page, act, timeout_s: float = 30, quiet_s: float = 1.0) -> float:
    """Seconds from `act()` (a key press, a click) to the last chart change it caused: the charts are quiet
    for `quiet_s` and the script idle."""
    page.evaluate("() => { window.vgChartChanged = 0; }")
    begun = page.evaluate("() => performance.now()")
    act()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        last, now = page.evaluate("() => [window.vgChartChanged, performance.now()]")
        if last > begun and now - last >= quiet_s * 1000 and page.locator(IDLE).count() == 1:
            return round((last - begun) / 1000, 3)
    raise TimeoutError(f"no chart redrawn within {timeout_s} s")


def interactions(page, repeats: int = 3) -> dict[str, object]:
    """Median seconds to redrawn charts for a step back on the scrubber and a switch of the gradient view."""
    page.evaluate(WATCH_CHARTS, CHART)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    scrubs = [redraw_s(page, lambda: thumb.press("ArrowLeft")) for _ in range(repeats)]
    grads = []
    for _ in range(repeats):
        other = page.locator('[data-testid="stButtonGroup"] [role="radio"][aria-checked="false"]').first
        grads.append(redraw_s(page, other.click))
    return {
        "scrub_s": statistics.median(scrubs),
        "scrubs_s": scrubs,
        "grad_s": statistics.median(grads),
        "grads_s": grads,
    }


def live_lag(browser, url: str, timeout_s: float = 900) -> dict[str, object]:
    """One run watched while it trains: at each look (every 0.2 s) the seconds since the progress bar first showed
    the step the charts show (0 while they show the bar's step), until the bar reaches its last step."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    seen: list[tuple[float, int]] = []  # (when, bar step) at each look
    lags: list[float] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = time.monotonic()
        bars = [PROGRESS.search(text) for text in page.locator('[data-testid="stProgress"]').all_inner_texts()]
        bar = next((found for found in bars if found), None)
        texts = page.locator('[data-testid="stMarkdownContainer"]').all_inner_texts()
        shown = [int(step.replace(",", "")) for text in texts for step in SHOWN_STEP.findall(text)]
        if bar:
            step, total = (int(group.replace(",", "")) for group in bar.groups())
            seen.append((now, step))
            if shown:
                lags.append(now - min(when for when, at in seen if at >= max(shown)) if step > max(shown) else 0.0)
            if step == total:
                break
        elif seen and page.locator(IDLE).count() == 1:  # trained between two looks: its last step never seen
            break
        page.wait_for_timeout(200)
    page.close()
    if not lags:
        raise RuntimeError("no progress bar and verdict seen together")
    return {
        "looks": len(lags),
        "lag_median_s": round(statistics.median(lags), 2),
        "lag_p90_s": round(sorted(lags)[int(0.9 * (len(lags) - 1))], 2),
        "lag_max_s": round(max(lags), 2),
        "training_s": round(seen[-1][0] - seen[0][0], 1),
    }


def floor(browser, out: Path) -> dict[str, object]:
    """The bare page (bench/bare_app.py), started and visited like the app: cold, then again."""
    with tempfile.TemporaryDirectory() as cache, streamlit_server(Path(cache), app="bench/bare_app.py") as server:
        cold = visit(browser, server.url, 1, 120, None, server.pid)
        again = visit(browser, server.url, 1, 60, out / "bare-page.png", server.pid)
        return {"cold": cold, "revisit": again, "rss_mb": rss_mb(server.pid)[0]}


TRAIN_ALONE = """
import sys, time, torch
from vg_core.presets import Comparison
from vg_core.train import train
from vg_core.cache import resolved
torch.set_num_threads(int(sys.argv[1]))
specs = [resolved(spec) for spec in Comparison.from_params({})[0].specs]
started = time.perf_counter()
for spec in specs:
    train(spec)
print(time.perf_counter() - started)
"""


def training_alone_s(threads: str) -> float:
    """The default preset's runs trained one after another, probes on, in a bare process with the page's torch
    threads and no page: what a cold visit cannot train faster than (imports and data reading not timed)."""
    command = [sys.executable, "-c", TRAIN_ALONE, threads]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return round(float(done.stdout.split()[-1]), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--article", action="store_true", help="also time the article preset (slow on a CPU)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"), help="where screenshots and JSON go")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the app's server (repeatable)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(item.split("=", 1) for item in args.env)
    report: dict[str, object] = {"cpus": os.cpu_count(), "env": env, "load_avg_before": os.getloadavg()}
    with chromium() as browser:
        report["bare_page"] = floor(browser, out)
        with tempfile.TemporaryDirectory() as cache, streamlit_server(Path(cache), env=env) as server:
            url, pid = server.url, server.pid
            default_charts = charts_per_page(3)
            report["default_cold"] = visit(browser, url, default_charts, 120, out / "default-cold.png", pid)
            report["default_revisit"] = visit(
                browser, url, default_charts, 60, out / "default-revisit.png", pid, interact=True
            )
            report["rss_after_default_mb"], report["peak_rss_after_default_mb"] = rss_mb(pid)
            report["live_lag"] = live_lag(browser, url + LAG_QUERY)
            if args.article:
                article = url + "/?preset=article"
                report["article_cold"] = visit(
                    browser, article, charts_per_page(1), 3600, out / "article-cold.png", pid
                )
                report["article_revisit"] = visit(browser, article, charts_per_page(1), 60, None, pid)
                report["rss_after_article_mb"], report["peak_rss_after_article_mb"] = rss_mb(pid)
    report["default_training_alone_s"] = training_alone_s(env.get("VG_TORCH_THREADS", "1"))
    report["load_avg_after"] = os.getloadavg()
    (out / "page_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
