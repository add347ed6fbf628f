"""End to end: `streamlit run app.py` in Debian's chromium, driven by playwright.

Screenshots go to screenshots/ at the repo root (git-ignored); each test prints where."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, require
from engine_helpers import as_watched, tiny_spec, zipped_run

from vg_core.cache import resolved
from vg_core.presets import Comparison
from vg_core.train import train

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "screenshots"


def _bench():
    """bench/page_bench.py holds the server and browser helpers (shared with the benchmark)."""
    spec = importlib.util.spec_from_file_location("page_bench", REPO / "bench" / "page_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["page_bench"] = module
    spec.loader.exec_module(module)
    return module


pb = _bench()


@pytest.fixture
def browser():
    require(pb.CHROMIUM.exists(), f"{pb.CHROMIUM} is missing (apt-get install chromium)")
    require(importlib.util.find_spec("playwright") is not None, "playwright is not installed")
    with pb.chromium() as browser:
        yield browser


def test_default_page_in_a_real_browser(browser, isolated_cache: Path) -> None:
    with pb.streamlit_server(isolated_cache) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url)
        pb.wait_first_chart(page, timeout_s=90)
        pb.wait_idle(page, charts=pb.charts_per_page(3), timeout_s=180)
        assert page.locator(pb.DRAWN_CHART).count() == pb.charts_per_page(3)
        assert page.locator(pb.EXCEPTION).count() == 0
        assert "preset=activations" in page.url  # the state is in the address bar
        assert page.get_by_text(re.compile(r"Vanishing:\W*at step")).count() == 1  # the sigmoid column's verdict
        # A step back on the scrubber reruns the page's fragment: the address bar follows, nothing trains.
        page.locator('[data-testid="stSlider"] input[type="range"]').first.press("ArrowLeft")
        page.wait_for_url(re.compile(r"step=\d+"), timeout=30_000)
        pb.wait_idle(page, charts=pb.charts_per_page(3), timeout_s=60)
        # The charts scrubbed to (their data swapped in place) are the charts a fresh visit draws at that step.
        fresh = browser.new_page(viewport={"width": 1600, "height": 1000})
        fresh.goto(page.url)
        pb.wait_idle(fresh, charts=pb.charts_per_page(3), timeout_s=60)
        assert chart_images(page) == chart_images(fresh)
        fresh.close()
        # A folded section draws its charts when opened.
        page.get_by_text("Gradient distributions by layer").click()
        pb.wait_idle(page, charts=pb.charts_per_page(3) + 3, timeout_s=60)
        assert page.locator(pb.DRAWN_CHART).count() == pb.charts_per_page(3) + 3
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / "default-page.png"
        pb.full_page_screenshot(page, path)
        print(f"\nscreenshot: {path}")
        assert "Traceback" not in server.log_text()


def chart_images(page) -> list[bytes]:
    """Each chart on the page as a PNG (its element's screenshot)."""
    charts = page.locator(pb.CHART)
    return [charts.nth(index).screenshot() for index in range(charts.count())]


def test_changing_the_page_mid_training_stops_the_old_run(browser, isolated_cache: Path) -> None:
    """A long first run is interrupted by applying a new configuration: no error, the new page is drawn,
    and the interrupted run leaves nothing in the cache."""
    # About 90 s of training on the development machine, so that even a fast CI machine is still at it.
    slow = {"preset": "activations", "epochs": "100", "width": "512", "run1": "sigmoid", "run2": "off", "run3": "off"}
    old = Comparison.from_params(slow)[0].specs[0]
    with pb.streamlit_server(isolated_cache) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url + "/?" + "&".join(f"{k}={v}" for k, v in slow.items()))
        pb.wait_first_chart(page, timeout_s=90)
        assert page.locator(pb.IDLE).count() == 0  # still training
        epochs = page.get_by_label("Epochs", exact=True)
        epochs.fill("1")
        page.get_by_role("button", name="Apply and train").click()
        page.wait_for_url(re.compile(r"epochs=1(&|$)"), timeout=90_000)
        new = resolved(old.replace(epochs=1))

        def seen() -> str:
            stored = sorted(p.name for p in isolated_cache.iterdir()) if isolated_cache.exists() else []
            text = page.inner_text('[data-testid="stMain"]')[:2000]
            return f"{new.key()} not stored; cache {stored}; page: {text}; server log: {server.log_text()[-2000:]}"

        deadline = time.monotonic() + 180  # the new run trains to the end and is stored (a slow CI machine: long)
        while not (isolated_cache / new.key()).is_dir():
            assert time.monotonic() < deadline and page.locator(pb.EXCEPTION).count() == 0, seen()
            page.wait_for_timeout(200)
        pb.wait_idle(page, charts=pb.charts_per_page(1), timeout_s=120)
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / "after-interrupt.png"
        page.screenshot(path=str(path))
        print(f"\nscreenshot: {path}")
        assert page.locator(pb.EXCEPTION).count() == 0, seen()
        assert not (isolated_cache / resolved(old).key()).exists(), seen()  # the stopped run was not stored
        assert "Traceback" not in server.log_text()


def test_widgets_drawn_late_by_a_slow_browser_keep_the_links_values(browser, isolated_cache: Path) -> None:
    """The widgets' code is held back until the page has trained (a busy machine loads it late): the sidebar,
    drawn then, shows the link's values, not each field's default (once the minimum of every number)."""
    link = (
        "preset=activations&dataset=mnist-sample&n_train=500&depth=3&width=48&epochs=0&lr=0.2&run1=tanh&grad=backprop"
    )
    held: list = []
    holding = [False]

    def hold(route) -> None:  # the code the browser asks for once the page has loaded: its widgets' and charts'
        held.append(route) if holding[0] else route.continue_()

    with pb.streamlit_server(isolated_cache) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.route("**/static/js/**", hold)
        page.on("load", lambda _: holding.__setitem__(0, True))
        page.goto(f"{server.url}/?{link}")
        deadline = time.monotonic() + 120
        while not (isolated_cache.exists() and any(isolated_cache.iterdir())):  # trained while the code waits
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            page.wait_for_timeout(200)
        pb.wait_idle(page, timeout_s=60)
        assert held, "no code was held back: the test no longer delays the widgets"
        holding[0] = False
        for route in held:
            route.continue_()
        pb.wait_idle(page, charts=pb.charts_per_page(1), timeout_s=120)
        values = {label: page.get_by_label(label, exact=True).input_value() for label in LINKED_NUMBERS}
        assert values == LINKED_NUMBERS
        run1 = page.locator('[data-testid="stSelectbox"]').filter(has_text="Activation").first
        assert run1.locator("input").input_value() == "tanh", run1.inner_html()
        assert page.get_by_role("radio", name="back-propagated ∂L/∂z").is_checked()
        assert page.locator(pb.EXCEPTION).count() == 0


LINKED_NUMBERS = {"Training samples": "500", "Hidden layers": "3", "Units per layer": "48", "Epochs": "0"}
LINKED_NUMBERS |= {"Learning rate": "0.2"}


def test_a_reproduction_and_its_depth_sweep(browser, isolated_cache: Path) -> None:
    """Glorot's figures 6-7 (narrowed through the link) with its claim and findings; then the Swish depth sweep:
    its button trains the missing points and the charts against depth appear."""
    small = "dataset=mnist-sample&n_train=500&width=64&epochs=0"
    with pb.streamlit_server(isolated_cache) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{server.url}/?preset=glorot-init&{small}")
        pb.wait_first_chart(page, timeout_s=90)
        pb.wait_idle(page, charts=pb.charts_per_page(2), timeout_s=180)
        assert page.locator(pb.EXCEPTION).count() == 0
        assert page.get_by_text("The paper's claim").count() == 1
        assert page.get_by_text("standard init: back-prop gradient fc1 ÷ last hidden").count() == 1
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / "glorot-init.png"
        pb.full_page_screenshot(page, path)
        print(f"\nscreenshot: {path}")

        page.set_viewport_size({"width": 1600, "height": 1000})
        page.goto(f"{server.url}/?preset=swish-depth&dataset=mnist-sample&n_train=500&width=16&epochs=1")
        pb.wait_idle(page, charts=pb.charts_per_page(2), timeout_s=180)
        depths = page.get_by_label("Depths (hidden layers, comma-separated)")
        depths.fill("2, 3, 10")
        depths.press("Enter")
        page.get_by_role("button", name="Run 6 missing points").click()
        page.get_by_text("All 6 points are in the cache.").wait_for(timeout=180_000)
        pb.wait_idle(page, charts=pb.charts_per_page(2) + 2, timeout_s=120)
        assert page.locator(pb.EXCEPTION).count() == 0
        assert page.get_by_text("ReLU test accuracy at depth 10").count() == 1
        path = SCREENSHOTS / "swish-depth.png"
        page.locator('[data-testid="stExpander"]').filter(has_text="Depth sweep").screenshot(path=str(path))
        print(f"\nscreenshot: {path}")
        assert "Traceback" not in server.log_text()


def test_uploading_a_saved_run_adds_a_column(browser, isolated_cache: Path, tmp_path: Path) -> None:
    """A watched run's .zip through the real upload widget: one more column, with its module-path layer names."""
    archive = tmp_path / "my-net.zip"
    archive.write_bytes(
        zipped_run(as_watched(train(tiny_spec()), ["conv1", "layer1.0.conv1", "fc1", "fc"]), tmp_path / "my-net")
    )
    tiny = "preset=activations&dataset=mnist-sample&n_train=200&epochs=1&width=16&batch_size=50"
    tiny += "&run1=sigmoid&run2=off&run3=off"  # one built-in run: the others of the preset are off
    with pb.streamlit_server(isolated_cache) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{server.url}/?{tiny}")
        pb.wait_idle(page, charts=pb.charts_per_page(1), timeout_s=180)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
        page.get_by_text("Y1 · my-net").first.wait_for(timeout=60_000)
        page.get_by_text("Gradient distributions by layer").click()  # one ridgeline per column: two
        pb.wait_idle(page, charts=pb.charts_per_page(2) + 2, timeout_s=60)
        assert page.locator(pb.DRAWN_CHART).count() == pb.charts_per_page(2) + 2
        assert page.locator(pb.EXCEPTION).count() == 0
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / "your-run.png"
        pb.full_page_screenshot(page, path)
        print(f"\nscreenshot: {path}")
        assert "Traceback" not in server.log_text()
