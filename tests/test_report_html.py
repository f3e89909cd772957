"""`qabot report --html`: one self-contained page that a browser renders — opened in headless
Chromium (the Debian chromium and chromium-driver packages, driven by selenium), every chart an
image that loaded with a real size, the gap groups and their examples on the page, nothing fetched
from anywhere else. Skipped, saying why, where Chromium is not installed (`make test` installs it)."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest

from bot.report.html import write_html
from bot.report.record import ANSWERED, DECLINED, QuestionRecord
from bot.report.summary import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver are not installed (make test-services "
                                       "installs the Debian packages chromium and chromium-driver)")
DAY = 86400.0
GAPS = {"Where is the <b>Lisbon</b> office & who runs it?": 4, "How do I book a meeting room?": 3}


def records(now: float) -> list[QuestionRecord]:
    rng = np.random.default_rng(1)
    out = []
    for g, (question, count) in enumerate(GAPS.items()):
        base = rng.normal(size=384).astype(np.float32)
        for i in range(count):
            v = base + rng.normal(scale=0.01, size=384).astype(np.float32)
            out.append(QuestionRecord(f"g{g}-{i}", now - (g + i) * DAY / 3, "slack", DECLINED, (), (),
                                      f"{question} ({i})", v / np.linalg.norm(v)))
    for i in range(20):
        out.append(QuestionRecord(f"a{i}", now - i * DAY / 4, "chat", ANSWERED, (), (f"doc-{i % 3}",), None, None,
                                  up=i % 2, down=int(i % 5 == 0)))
    return sorted(out, key=lambda r: -r.asked_at)


@pytest.mark.slow  # starts a browser
def test_the_html_report_renders_in_headless_chromium(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    now = time.time()
    page = tmp_path / "report.html"
    write_html(build_report(records(now), since=now - 7 * DAY, until=now), page)
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained: nothing fetched
    assert "<b>Lisbon</b>" not in html  # question text is escaped

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])")
        text = driver.find_element("tag name", "body").text
    finally:
        driver.quit()
    assert len(images) == 4, images  # activity, votes, gap groups, documents cited
    for complete, width, height, alt in images:
        assert complete and width > 200 and height > 100, (alt, width, height)
    assert "4 questions" in text and "3 questions" in text and "voted down" in text
    assert "Where is the <b>Lisbon</b> office & who runs it? (0)" in text  # shown as typed
    assert "How do I book a meeting room? (0)" in text
    assert "What the bot was asked" in text
