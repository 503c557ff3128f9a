"""report.html as a researcher sees it: in the MLflow UI's artifact view of a sweep's parent run, served by a real
`mlflow server` over the store, in a real headless chromium (Debian's chromium and chromium-driver; `make test`
installs them). Every figure must load from the page itself: the UI shows HTML in a sandboxed frame that can
fetch nothing. The verdicts must also be tags and metrics of the parent run, for the runs table."""

import math
import shutil

import numpy as np
import pytest
from analysis_stores import fill, fill_search, without_fsync
from mlflow import MlflowClient
from PIL import Image

from analysis import report
from sweeps import tracking

pytestmark = pytest.mark.slow  # an `mlflow server` and a headless chromium

WAIT_S = 120  # the UI is a large bundle; on 2 busy cores it can take tens of seconds to draw


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A grid sweep with generated images and a two-objective search, reported together onto both parent runs."""
    root = tmp_path_factory.mktemp("browser")
    uri = f"sqlite:///{root}/mlflow.db"
    experiment_id = tracking.ensure_store(uri, "unisweep")
    client = MlflowClient(uri)
    without_fsync(client)
    parents = {"served": fill(client, experiment_id, "served", images=True),
               "searched": fill_search(client, experiment_id, "searched", root / "ray")}
    verdicts = report.write_report(uri, ["served", "searched"], root / "out")
    return root, uri, experiment_id, parents, verdicts


@pytest.fixture(scope="module")
def server_url(reported, serve):
    """A real `mlflow server` over the store the report was written into."""
    root, uri, *_ = reported
    return serve(uri, root / "server-artifacts")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "needs Debian's chromium and chromium-driver: `make test` installs them"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # given, with the driver: Selenium then fetches nothing
    # --no-sandbox: chromium refuses to run as root with its sandbox (containers, CI)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(WAIT_S)
    yield session
    session.quit()


def _report_frame(browser):
    """The UI's frame that shows report.html, once its verdict table is there (switched into it), else None."""
    from selenium.webdriver.common.by import By

    for frame in browser.find_elements(By.TAG_NAME, "iframe"):
        browser.switch_to.frame(frame)
        if browser.find_elements(By.ID, "verdicts"):
            return frame
        browser.switch_to.default_content()
    return None


def test_the_mlflow_ui_shows_report_html_with_every_figure(reported, server_url, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    _, _, experiment_id, parents, verdicts = reported
    url = server_url
    run = parents["served"]
    browser.get(f"{url}/#/experiments/{experiment_id}/runs/{run}/artifacts/report/report.html")
    frame = WebDriverWait(browser, WAIT_S).until(_report_frame)
    WebDriverWait(browser, WAIT_S).until(lambda b: b.execute_script(
        "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"))

    page = browser.execute_script("""return {
        first: document.querySelector('table').id,
        verdicts: [...document.querySelectorAll('#verdicts tbody tr')].map(r => [r.cells[0].textContent,
                                                                                 r.cells[1].textContent]),
        images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.src.slice(0, 22)]),
        external: document.querySelectorAll('script, link, iframe, [src^="http"]').length,
        unscrolled: [...document.querySelectorAll('table')].filter(
            t => getComputedStyle(t.parentElement).overflowX !== 'auto').length}""")
    assert page["first"] == "verdicts"  # the verdict table comes first
    assert page["verdicts"] == [[k, v.verdict] for k, v in verdicts.items()]
    logged = [f for f in MlflowClient(url).list_artifacts(run, "report/figures")]
    assert len(page["images"]) == len(logged)  # every figure the run holds is in the page
    for alt, complete, width, src in page["images"]:
        assert complete and width > 0, f"figure {alt!r} did not load"
        assert src == "data:image/png;base64,", alt  # inline: the sandboxed frame fetches nothing
    alts = {alt.split(":")[0] for alt, *_ in page["images"]}
    assert {"finding 1-und", "generated images", "optimisation history", "Pareto front", "parameter importance",
            "parallel coordinates"} <= alts
    assert page["external"] == 0 and page["unscrolled"] == 0  # self-contained; wide tables scroll, not squeeze

    browser.switch_to.default_content()
    shot = tmp_path / "mlflow_ui_report.png"
    browser.save_screenshot(str(shot))
    assert shot.is_file() and shot.stat().st_size > 20_000
    box = frame.rect  # the report's frame in the page (CSS pixels; headless draws at scale 1)
    pixels = np.asarray(Image.open(shot).convert("RGB"))[int(box["y"]):int(box["y"] + box["height"]),
                                                          int(box["x"]):int(box["x"] + box["width"])]
    assert pixels.size and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text and a table drawn, not blank


def test_verdicts_are_tags_and_metrics_of_the_parent_runs(reported, server_url):
    _, _, experiment_id, parents, verdicts = reported
    client = MlflowClient(server_url)
    for run in parents.values():
        data = client.get_run(run).data
        assert not [t for t in data.tags if t.startswith("unisweep.verdict.")]  # replaced by finding.<key>.verdict
        for key, v in verdicts.items():
            assert data.tags[f"finding.{key}.verdict"] == v.verdict
            for name in ("effect", "ci_low", "ci_high"):
                value = getattr(v, name)
                if math.isfinite(value):
                    assert data.metrics[f"finding.{key}.{name}"] == pytest.approx(value)
                else:  # a NaN would sort as a number
                    assert f"finding.{key}.{name}" not in data.metrics
    assert verdicts["1-und"].verdict == "reproduced" and math.isfinite(verdicts["1-und"].effect)
    # what the runs table does with them: filter by a verdict, sort by an effect
    found = client.search_runs([experiment_id], "tags.`finding.1-und.verdict` = 'reproduced'",
                               order_by=["metrics.`finding.1-und.effect` DESC"])
    assert {r.info.run_id for r in found} == set(parents.values())
