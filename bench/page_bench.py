"""Page benchmark: the real app in a real browser, timed. `python bench/page_bench.py [--article]`.

Starts `streamlit run app.py` on a free port with an empty result cache, opens it in headless chromium
(playwright) and measures, for the default preset:
  first_chart_s   page opened -> the first Vega chart drawn (cold result cache: the runs train live)
  complete_s      page opened -> every run trained and the finished page drawn (app idle, all charts)
  revisit_s       a second visit to the same URL (cached) -> complete
  rss_mb          the Streamlit process's resident memory afterwards (and its peak, from /proc)
With --article it then opens the article preset and reports the same (MNIST falls back to the 5,000-digit
mnist-sample offline; the page says so). --server-warm first opens a throwaway page so that the
torch/pandas imports of the first visitor are not counted. Helpers here are reused by tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
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


def charts_per_page(runs: int) -> int:
    """Charts on a finished page: gradient flow, loss, accuracy, activation std; 7 per run (the sweep closed):
    gradients, activations, ratios, heatmap, article, activations and input percentiles over training."""
    return 4 + 7 * runs


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
def streamlit_server(cache_dir: Path, port: int | None = None, env: dict | None = None) -> Iterator[Server]:
    """`streamlit run app.py` headless on a free local port, until the block ends."""
    port = port or free_port()
    environment = {**os.environ, "VG_CACHE_DIR": str(cache_dir), **(env or {})}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
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


def wait_idle(page, charts: int | None = None, timeout_s: float = 120, settle_s: float = 1.0) -> float:
    """Wait until the script is not running (for `settle_s` in a row) and, if given, `charts` charts are drawn.
    Returns the moment (time.monotonic) it first became so."""
    deadline = time.monotonic() + timeout_s
    since = None
    while time.monotonic() < deadline:
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


def visit(
    browser, url: str, charts: int, timeout_s: float, screenshot: Path | None = None, server_pid: int | None = None
) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    server_cpu = cpu_s(server_pid) if server_pid else 0.0
    browser_cpu = cpu_s(os.getpid(), skip=server_pid)
    started = time.monotonic()
    page.goto(url)
    first = wait_first_chart(page, timeout_s)
    done = wait_idle(page, charts, timeout_s)
    if page.locator(EXCEPTION).count():
        raise RuntimeError("the page shows an exception")
    timing = {
        "first_chart_s": round(first - started, 2),
        "complete_s": round(done - started, 2),
        "server_cpu_s": round(cpu_s(server_pid) - server_cpu, 2) if server_pid else None,
        "browser_cpu_s": round(cpu_s(os.getpid(), skip=server_pid) - browser_cpu, 2),
        "load_avg_1min": os.getloadavg()[0],
    }
    if screenshot:
        full_page_screenshot(page, screenshot)
    page.close()
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--article", action="store_true", help="also time the article preset (slow on a CPU)")
    parser.add_argument("--server-warm", action="store_true", help="open a throwaway page first (imports)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"), help="where screenshots and JSON go")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as cache, streamlit_server(Path(cache)) as server, chromium() as browser:
        url, pid = server.url, server.pid
        if args.server_warm:
            report["warm_up"] = visit(
                browser, url + "/?preset=activations&epochs=0&run1=linear", charts_per_page(1), 120
            )
        default_charts = charts_per_page(3)
        report["default_cold"] = visit(browser, url, default_charts, 120, out / "default-cold.png", pid)
        report["default_revisit"] = visit(browser, url, default_charts, 60, out / "default-revisit.png", pid)
        report["rss_after_default_mb"], report["peak_rss_after_default_mb"] = rss_mb(pid)
        if args.article:
            article = url + "/?preset=article"
            report["article_cold"] = visit(browser, article, charts_per_page(1), 3600, out / "article-cold.png", pid)
            report["article_revisit"] = visit(browser, article, charts_per_page(1), 60, None, pid)
            report["rss_after_article_mb"], report["peak_rss_after_article_mb"] = rss_mb(pid)
    report["load_avg_after"] = os.getloadavg()
    (out / "page_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
