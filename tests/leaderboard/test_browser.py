"""The static file and the live server in real headless Chromium, on a real search's database."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest

from leaderboard.static import write_leaderboard
from nasfcn.store import Store, epochs_frame, leaderboard_frame

pytestmark = pytest.mark.slow

# As in conftest.py: the name of a real search, and the error of one of its trials.
XSS_NAME = "<script>window.__x=1</script><img src=x onerror=window.__y=1>"
XSS_ERROR = 'RuntimeError: <img src=x onerror="window.__z=1"> & <b>bold</b>'

WAIT_S = 30


def _wait(driver, condition, message: str):
    """Poll ``condition``; an element the live page re-rendered meanwhile just means poll again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(condition, message)


def _click_first(driver, selector: str, message: str) -> None:
    """Click the first match, fetching it again if a refresh replaced it under the click."""

    def click(d) -> bool:
        d.find_elements("css selector", selector)[0].click()
        return True

    _wait(driver, click, message)


def _injected(driver) -> list:
    return driver.execute_script("return [typeof window.__x, typeof window.__y, typeof window.__z]")


def _board(url: str, search: str):
    store = Store(url)
    try:
        return leaderboard_frame(store, search)
    finally:
        store.dispose()


def _write(url: str, search: str, path: Path) -> Path:
    store = Store(url)
    try:
        return write_leaderboard(store, path, search)
    finally:
        store.dispose()


def test_static_file_shows_every_trial_and_opens_details(browser, searched_db, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    trials = _board(searched_db, "tiny")
    page = _write(searched_db, "tiny", tmp_path / "board.html")
    browser.get(page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")
    assert len(rows) == len(trials)
    # Rows come in the leaderboard's order: best val mIoU first.
    assert [r.get_attribute("data-trial") for r in rows] == [str(t) for t in trials["trial_id"]]
    _wait(
        browser,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 10,
        "the plots were not drawn",
    )
    assert browser.execute_script("return document.querySelectorAll('script[src]').length") == 0
    assert browser.execute_script("return typeof Plotly") == "object"  # inlined, no network

    # The filter box narrows the rows to the one architecture typed (the table is virtualised:
    # the rows filtered out leave the DOM, so the rows are read again).
    first = trials.iloc[0]
    browser.find_element(By.ID, "filter-text").send_keys(first["arch_id"])
    visible = [r for r in browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr") if r.is_displayed()]
    assert {r.get_attribute("data-trial") for r in visible} == {
        str(t) for t in trials[trials["arch_id"] == first["arch_id"]]["trial_id"]
    }

    visible[0].click()
    detail = browser.find_element(By.ID, f"trial-{int(first['trial_id'])}")
    _wait(browser, lambda d: detail.is_displayed(), "the detail section did not open")
    assert first["arch_id"] in detail.text
    assert "nasfcn export --search tiny --trial" in detail.text
    _wait(
        browser,
        lambda d: len(detail.find_elements(By.CSS_SELECTOR, "div[data-figure] .main-svg")) >= 2,
        "the detail plots were not drawn",
    )


def _first_rows(driver, count: int = 3) -> list[str]:
    """The trial ids of the first rows the table shows, read in one step in the page."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#trials tbody tr'))"
        ".slice(0, arguments[0]).map(r => r.dataset.trial)",
        count,
    )


def test_static_file_of_ten_thousand_trials_shows_sorts_and_opens_a_trial(browser, bulk_db, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    url, search = bulk_db(10_000)
    trials = _board(url, search)
    browser.get(_write(url, search, tmp_path / "big.html").as_uri())
    _wait(browser, lambda d: d.execute_script("return window.__boardReadyAt"), "the page never got ready")
    assert browser.find_element(By.ID, "row-count").text == "10000 of 10000 trials"
    rows = browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")
    assert 0 < len(rows) < 300  # the rows in view, not ten thousand
    assert _first_rows(browser) == [str(t) for t in trials["trial_id"][:3]]  # best first

    miou = next(th for th in browser.find_elements(By.CSS_SELECTOR, "#trials th") if th.text == "val mIoU")
    miou.click()  # ascending: the worst result first, trials without one last
    worst = trials[trials["best_miou"] == trials["best_miou"].min()]
    assert _first_rows(browser, 1)[0] in {str(t) for t in worst["trial_id"]}
    miou.click()
    assert miou.get_attribute("aria-sort") == "descending"
    assert _first_rows(browser, 1) == [str(trials["trial_id"].iloc[0])]

    scroller = browser.find_element(By.ID, "table-scroll")  # scrolled to the end: the last rows
    browser.execute_script("arguments[0].scrollTop = arguments[0].scrollHeight", scroller)
    last = str(trials["trial_id"].iloc[-1])
    _wait(browser, lambda d: last in _first_rows(d, 300), "the last row did not come into view")

    Select(browser.find_element(By.ID, "filter-status")).select_by_value("failed")
    failed = trials[trials["status"] == "failed"]
    assert browser.find_element(By.ID, "row-count").text == f"{len(failed)} of 10000 trials"

    row = browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")[0]
    trial = failed[failed["trial_id"] == int(row.get_attribute("data-trial"))].iloc[0]
    row.click()
    detail = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".detail:target"), "no detail opened")
    assert detail.get_attribute("id") == f"trial-{int(trial['trial_id'])}"
    assert detail.find_element(By.CSS_SELECTOR, "pre.error").text == trial["error"]
    assert json.loads(detail.find_element(By.CSS_SELECTOR, "pre.genotype").text) == json.loads(
        trial["genotype_json"]
    )
    assert f"nasfcn export --search {search} --trial {int(trial['number'])} --db {url}" in detail.text
    _wait(
        browser,
        lambda d: len(detail.find_elements(By.CSS_SELECTOR, "div[data-figure] .main-svg")) >= 2,
        "the detail plots were not drawn",
    )


def test_static_file_shows_a_script_name_as_text(browser, searched_db, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    page = _write(searched_db, XSS_NAME, tmp_path / "xss.html")
    browser.get(page.as_uri())
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"), "no plot drawn")
    assert browser.find_element(By.ID, "search-name").text == XSS_NAME
    assert XSS_NAME in browser.title
    failed = browser.find_element(By.CSS_SELECTOR, '#trials tbody tr[data-status="failed"]')
    assert XSS_ERROR in failed.text
    failed.click()
    detail = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".detail:target"), "no detail opened")
    assert detail.find_element(By.CSS_SELECTOR, "pre.error").text == XSS_ERROR
    assert browser.execute_script("return document.images.length") == 0
    assert _injected(browser) == ["undefined"] * 3


TABLE_CELLS = '#table .ag-row .ag-cell[col-id="arch_id"]'
#: The first row of the grid as shown (sorted and filtered), whatever order its rows are drawn in.
FIRST_ROW_CELL = '#table .ag-row[row-index="0"] .ag-cell[col-id="arch_id"]'


def _table_rows(driver) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, TABLE_CELLS)


def _column(driver, key: str) -> list[str]:
    """The texts of one grid column, top to bottom by each row's index, read in one step in the
    page: the live app re-renders its table on every refresh, so elements fetched earlier can go stale."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#table .ag-row'))"
        ".filter(r => r.querySelector(`.ag-cell[col-id='${arguments[0]}']`))"
        ".sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))"
        ".map(r => r.querySelector(`.ag-cell[col-id='${arguments[0]}']`).innerText.trim())",
        key,
    )


def test_live_server_lists_trials_and_a_click_opens_the_detail_page(
    browser, searched_db, live_server
) -> None:
    from selenium.webdriver.common.by import By

    trials = _board(searched_db, "tiny")
    browser.get(f"{live_server}/?search=tiny")
    _wait(browser, lambda d: len(_table_rows(d)) == len(trials), "the table did not fill")
    assert _column(browser, "arch_id") == list(trials["arch_id"])
    for graph in ("pareto", "curves", "best", "parcoords", "effects", "heatmap", "across"):
        _wait(
            browser, lambda d, g=graph: d.find_elements(By.CSS_SELECTOR, f"#{g} .main-svg"), f"{graph} empty"
        )
    statuses = set(_column(browser, "status"))
    assert any("rejected" in s for s in statuses)  # the parameter budget rejected someone, visibly

    _click_first(browser, FIRST_ROW_CELL, "the first row could not be clicked")
    first = trials.iloc[0]
    path = f"/trial/{int(first['trial_id'])}"
    _wait(browser, lambda d: urlparse(d.current_url).path == path, "the click did not open the trial")
    # texts read inside _wait: a refresh may re-render the detail page between finding and reading
    genotype = _wait(browser, lambda d: d.find_element(By.ID, "genotype").text, "no detail page")
    assert json.loads(genotype) == json.loads(first["genotype_json"])
    title = _wait(browser, lambda d: d.find_element(By.ID, "detail-title").text, "no title")
    assert first["arch_id"] in title
    command = _wait(browser, lambda d: d.find_element(By.ID, "export-command").text, "no export command")
    assert command == f"nasfcn export --search tiny --trial {int(first['number'])} --db {searched_db}"
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-curve .main-svg"), "no curve")
    assert not browser.find_element(By.ID, "board").is_displayed()

    _click_first(browser, "#back", "the back link could not be clicked")
    _wait(browser, lambda d: d.find_element(By.ID, "board").is_displayed(), "the board did not come back")
    _wait(browser, lambda d: len(_table_rows(d)) == len(trials), "the table did not come back")
    _click_first(
        browser, FIRST_ROW_CELL, "the first row could not be clicked again"
    )  # the same row opens again
    _wait(browser, lambda d: urlparse(d.current_url).path == path, "a second click did not open the trial")


def test_live_server_shows_a_script_name_as_text(browser, searched_db, live_server) -> None:
    from selenium.webdriver.common.by import By

    trials = _board(searched_db, XSS_NAME)
    browser.get(f"{live_server}/?search={quote(XSS_NAME, safe='')}")
    _wait(browser, lambda d: len(_table_rows(d)) == len(trials), "the table did not fill")
    _wait(browser, lambda d: XSS_NAME in d.find_element(By.ID, "search").text, "the name is not shown")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#across .main-svg"), "no cross-search plot")
    notes = _column(browser, "note")
    assert XSS_ERROR in notes
    assert _injected(browser) == ["undefined"] * 3

    failed = trials[trials["status"] == "failed"].iloc[0]
    browser.get(f"{live_server}/trial/{int(failed['trial_id'])}")
    name = _wait(browser, lambda d: d.find_element(By.ID, "detail-search"), "no detail page")
    assert name.text == XSS_NAME
    assert browser.find_element(By.ID, "error").text == XSS_ERROR
    assert XSS_NAME in browser.find_element(By.ID, "export-command").text
    assert browser.execute_script("return document.images.length") == 0
    assert _injected(browser) == ["undefined"] * 3


def test_live_server_shows_new_trials_without_a_reload(browser, handmade_db, live_handmade) -> None:
    from selenium.webdriver.common.by import By

    from nasfcn.space import load_space
    from nasfcn.store import get_search, record_epoch, upsert_trial

    browser.get(f"{live_handmade}/?search=lonely")
    _wait(browser, lambda d: len(_table_rows(d)) == 1, "the table did not fill")
    # The rows come first (the table asks for them itself), the board's message with the plots.
    _wait(browser, lambda d: "Only one trial so far" in d.find_element(By.ID, "message").text, "no message")
    store = Store(handmade_db)
    try:  # what the search's recorder writes when a trial starts and finishes an epoch
        search = get_search(store, "lonely")
        genotype = load_space("search_spaces/fcn_tiny.yaml").sample(3)
        trial = upsert_trial(store, search["id"], 1, genotype, dataset="shapes", recipe={}, status="running")
        record_epoch(store, trial, 1, {"val_miou": 0.9, "val_per_class_iou": [0.9, 0.9, 0.9]})
    finally:
        store.dispose()
    _wait(browser, lambda d: len(_table_rows(d)) == 2, "the new trial did not appear")
    assert _column(browser, "arch_id")[0] == genotype.arch_id  # 0.9: now the best
    statuses = _column(browser, "status")
    assert statuses[0] == "▶ running"
    _wait(browser, lambda d: d.find_element(By.ID, "message").text == "", "the message stayed")


MIOU_HEADER = '#table .ag-header-cell[col-id="best_miou"] .ag-header-cell-label'


def _grid(driver, expression: str):
    """``expression`` on the live grid's API (``api``), evaluated in the page."""
    return driver.execute_script(f"var api = window.dash_ag_grid.getApi('table'); return {expression};")


def _first_live_id(driver) -> str | None:
    return driver.execute_script(
        "var r = document.querySelector('#table .ag-row[row-index=\"0\"]');"
        "return r && r.innerText.trim() ? r.getAttribute('row-id') : null"
    )


def test_live_server_pages_sorts_and_filters_ten_thousand_trials_in_the_database(browser, live_bulk) -> None:
    from selenium.webdriver.common.by import By

    base, url, search = live_bulk
    trials = _board(url, search)
    best = str(trials["trial_id"].iloc[0])
    browser.get(f"{base}/?search={search}")
    _wait(browser, lambda d: _first_live_id(d) == best, "the best trial is not the first row")
    assert 0 < len(browser.find_elements(By.CSS_SELECTOR, "#table .ag-row")) < 300  # the rows in view
    count = "api.getDisplayedRowCount()"
    _wait(browser, lambda d: _grid(d, count) == 10_000, "the row count is not the search's")
    _wait(browser, lambda d: "10000 trials" in d.find_element(By.ID, "summary").text, "no board summary")

    worst = {str(t) for t in trials.loc[trials["best_miou"] == trials["best_miou"].min(), "trial_id"]}
    _click_first(browser, MIOU_HEADER, "no mIoU header")
    _wait(browser, lambda d: _first_live_id(d) in worst, "an ascending sort did not put the worst first")
    _click_first(browser, MIOU_HEADER, "no mIoU header")
    _wait(browser, lambda d: _first_live_id(d) == best, "a descending sort did not put the best first")

    failed = trials[trials["status"] == "failed"]
    _click_first(browser, '#filter-status input[value="failed"]', "no status filter for failed trials")
    _wait(browser, lambda d: _first_live_id(d) in {str(t) for t in failed["trial_id"]}, "not filtered")
    _wait(browser, lambda d: _grid(d, count) == len(failed), "not the failed count")
    _click_first(browser, '#filter-status input[value="failed"]', "the status filter could not be undone")

    chosen = trials.iloc[1234]
    model = json.dumps({"arch_id": {"filterType": "text", "type": "equals", "filter": chosen["arch_id"]}})
    _grid(browser, f"api.setFilterModel({model})")  # a header filter, applied in the database
    target = str(chosen["trial_id"])
    _wait(browser, lambda d: _grid(d, count) == 1, "the header filter left other rows")
    _wait(browser, lambda d: _first_live_id(d) == target, "the header filter did not find the trial")
    _click_first(browser, FIRST_ROW_CELL, "the filtered row could not be clicked")
    _wait(browser, lambda d: urlparse(d.current_url).path == f"/trial/{target}", "the row did not open")
    genotype = _wait(browser, lambda d: d.find_element(By.ID, "genotype"), "no detail page")
    assert json.loads(genotype.text) == json.loads(chosen["genotype_json"])


def _benchmark_labels(url: str) -> list[str]:
    from leaderboard.data import load_benchmark_board

    store = Store(url)
    try:
        return list(load_benchmark_board(store, "bench").table()["label"])
    finally:
        store.dispose()


def _benchmark_rows(driver) -> list[list[str]]:
    """Every row's cell texts, read in one step in the page (see ``_column``)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#benchmark-table tbody tr'))"
        ".map(r => Array.from(r.querySelectorAll('td')).map(c => c.innerText.trim()))"
    )


def _error_bars_drawn(driver, graph: str) -> bool:
    """Both architectures' points and their CI bars are in the plot's SVG."""
    from selenium.webdriver.common.by import By

    points = driver.find_elements(By.CSS_SELECTOR, f"{graph} .scatterlayer .point")
    bars = driver.find_elements(By.CSS_SELECTOR, f"{graph} .errorbar path.xerror")
    return len(points) == 2 and len(bars) == 2


def test_benchmark_view_in_the_static_file_and_the_live_server(
    browser, searched_db, live_server, tmp_path
) -> None:
    """A real tiny benchmark: the table has a row per architecture, each dataset an error-bar plot."""
    from selenium.webdriver.common.by import By

    labels = _benchmark_labels(searched_db)
    assert sorted(labels) == ["fcn8s@4 (ref)", "unet@4 (ref)"]
    page = _write(searched_db, "bench", tmp_path / "bench.html")
    browser.get(page.as_uri())
    rows = _benchmark_rows(browser)
    assert [row[1] for row in rows] == labels  # by rank over both datasets
    assert len(rows[0]) == 3 + 5 * 2  # the architecture, then five columns per dataset
    for i in range(2):
        _wait(browser, lambda d, i=i: _error_bars_drawn(d, f"#dataset-{i}"), f"no error bars for dataset {i}")
    assert (
        "nasfcn benchmark report bench --out bench.md" in browser.find_element(By.ID, "report-command").text
    )

    browser.get(f"{live_server}/?search=bench")
    _wait(browser, lambda d: len(_benchmark_rows(d)) == 2, "the live benchmark table did not fill")
    assert [row[1] for row in _benchmark_rows(browser)] == labels
    for i in range(2):
        graph = f"#benchmark-figure-{i}"
        _wait(browser, lambda d, g=graph: _error_bars_drawn(d, g), f"no live error bars for dataset {i}")
    assert not browser.find_element(By.ID, "search-board").is_displayed()
    assert "(benchmark)" in browser.find_element(By.ID, "search").text
    assert "paired t-test" in browser.find_element(By.ID, "method").text


#: Run in the page before its own scripts: when each callback request was sent and answered
#: (``window.__calls``: [what, "send" | "answer", time, answer size], times from navigation start).
CALL_LOG = """
window.__calls = [];
const fetched = window.fetch;
window.fetch = function (url, options) {
  let what = String(url);
  try { what = JSON.parse(options.body).output; } catch (err) {}
  window.__calls.push([what, "send", performance.now(), 0]);
  return fetched.apply(this, arguments).then(answer => answer.clone().text().then(text => {
    window.__calls.push([what, "answer", performance.now(), text.length]);
    return answer;
  }));
};
"""


def test_live_server_asks_for_the_plots_only_after_the_first_rows_came(
    browser, searched_db, live_server
) -> None:
    """Plotly takes a browser about a second to load and start: the table's rows come first."""
    trials = _board(searched_db, "tiny")
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CALL_LOG})
    try:
        browser.get(f"{live_server}/?search=tiny")
        _wait(browser, lambda d: len(_table_rows(d)) == len(trials), "the table did not fill")
        _wait(browser, lambda d: d.find_elements("css selector", "#pareto .main-svg"), "no Pareto plot")
        calls = browser.execute_script("return window.__calls")
        plotly = browser.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('plotly'))"
            ".map(e => e.startTime)"
        )
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)
    rows = [
        t
        for what, kind, t, size in calls
        if what == "table.getRowsResponse" and kind == "answer" and size > 100
    ]
    asked = [t for what, kind, t, _ in calls if what == "board-figures.children" and kind == "send"]
    assert rows  # an answer with rows in it (an empty one is a few bytes)
    assert asked
    assert min(asked) > min(rows)  # the plots are asked for once the first rows are in
    assert plotly  # and Plotly is loaded for them, not before
    assert min(plotly) > min(asked)


def test_static_file_of_an_arena_draws_each_trials_own_curve_from_a_shared_run(
    browser, arena_db, tmp_path
) -> None:
    from selenium.webdriver.common.by import By

    url, search = arena_db(2)
    store = Store(url)
    try:
        trials, epochs = leaderboard_frame(store, search), epochs_frame(store, search)
    finally:
        store.dispose()
    longest = trials.groupby(["arch_id", "seed"])["epochs_trained"].transform("max")
    stopped = trials[(trials["status"] == "stopped_early") & (trials["epochs_trained"] < longest)]
    trial = int(stopped["trial_id"].iloc[0])  # its run of the table goes on in another trial
    mine = epochs[epochs["trial_id"] == trial].sort_values("epoch")
    browser.get(_write(url, search, tmp_path / "arena.html").as_uri() + f"#trial-{trial}")
    _wait(browser, lambda d: d.execute_script("return window.__boardReadyAt"), "the page never got ready")
    figure = f'#trial-{trial} div[data-figure="curve"]'
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"{figure} .main-svg"), "no curve drawn")
    drawn = browser.execute_script(f"var t = document.querySelector('{figure}').data[0]; return [t.x, t.y];")
    assert drawn[0] == mine["epoch"].tolist()
    assert drawn[1] == pytest.approx(mine["val_miou"].tolist())
