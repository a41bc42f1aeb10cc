"""The feed explorer in a real browser: Debian's Chromium, headless, driven by selenium through the system
chromedriver, against `foryou explore` beside a real worker over the real broker. Saves docs/explorer.png."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from foryou.client import FeedClient
from foryou.explore.server import ExplorerServer
from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, wait_for_posts, worker_json

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="no chromium/chromedriver on PATH: `make debian-tools` installs them"),
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "explorer.png"
TEXTS = [
    "Shipping the new ranking model today: faster, fresher feeds.",
    "Photos from the mountain trail this morning",
    "Thread: what we learned running Kafka Streams for a year",
    "Hot take: tabs are better than spaces",
    "Our team is hiring backend engineers, DM me",
    "Match highlights from last night, what a finish",
    "Recipe: the 10-minute pasta everyone asks about",
    "Reading list for the weekend: five papers on recommender systems",
]


@pytest.fixture(scope="module")
def world(start_worker: StartWorker, client: FeedClient) -> Iterator[dict]:
    from foryou.client import unique_ids

    worker = start_worker()
    worker.wait_caught_up(300)
    ids = unique_ids()
    authors = [next(ids) for _ in range(4)]
    users = [next(ids) for _ in range(5)]
    posts = []
    for i, text in enumerate(TEXTS * 2):
        post = next(ids)
        media = "video" if i % 5 == 2 else "photo" if i % 5 == 1 else "none"
        client.post(post, authors[i % len(authors)], text=text, media=media,
                    video_duration_ms=25_000 if media == "video" else None)
        posts.append(post)
    for n, user in enumerate(users):
        for author in authors[: 2 + n % 3]:
            client.follow(user, author)
        for post in posts[n : n + 4]:
            client.engage(user, post, authors[posts.index(post) % len(authors)], "favorite", dwell_ms=2000)
    client.flush()
    wait_for_posts(worker, posts)
    for user in users:
        eventually(lambda user=user: worker_json(worker, f"/inspect/user/{user}")[1].get("actions"), timeout_s=120)
    server = ExplorerServer(worker.url).start()
    yield {"worker": worker, "server": server, "users": users, "authors": authors}
    server.stop()


def test_explorer_shows_a_feed_with_its_breakdown_and_simulates_a_draft(world: dict) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        wait = WebDriverWait(driver, 120)
        driver.get(world["server"].url)
        user = world["users"][2]
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-list option")) > len(world["users"]))
        Select(driver.find_element(By.ID, "user-list")).select_by_value(str(user))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#feed .post"))
        first = driver.find_element(By.CSS_SELECTOR, "#feed .post")
        assert "@author" in first.text and ("in-network" in first.text or "out-of-network" in first.text)
        assert "weighted" in first.text and "diversity" in first.text  # scores and multipliers per post
        assert len(first.find_elements(By.CSS_SELECTOR, ".prob .bar")) == 6  # its top action probabilities
        assert any(t in first.text for t in TEXTS)
        stages = driver.find_element(By.ID, "stages-table").text
        assert "Thunder" in stages and "PhoenixScorer" in stages and "TopK" in stages
        assert f"Feed of user {user}" in driver.find_element(By.ID, "feed-title").text
        wait.until(lambda d: "answers ok" in d.find_element(By.ID, "metrics").text)

        driver.find_element(By.ID, "draft-author").send_keys(str(world["authors"][0]))
        driver.find_element(By.ID, "draft-text").send_keys("Launch day: the feed explorer is live")
        driver.find_element(By.ID, "simulate").click()
        wait.until(lambda d: "expected impressions" in d.find_element(By.ID, "draft-result").text)
        result = driver.find_element(By.ID, "draft-result").text
        assert "expected engagements" in result and "followers" in result
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#feed .post.draft")
                   or "with the draft" in d.find_element(By.ID, "feed-title").text)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 20_000
    finally:
        driver.quit()


def test_explorer_api_reports_worker_errors_plainly(world: dict) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{world['server'].url}/api/feed/0", timeout=30)
    assert raised.value.code == 400 and b"positive" in raised.value.read()


def test_key_metrics_parse_a_workers_metrics(world: dict) -> None:
    from foryou.explore.server import key_metrics

    worker: WorkerProcess = world["worker"]
    values = key_metrics(worker.metrics_text())
    assert values["posts"] >= len(TEXTS) * 2 and values["model"]
