"""The web page in a real browser: headless Chromium uploads a generated file and shows the result."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamperscope import samples

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,2400",
                 f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    yield driver
    driver.quit()


def test_upload_progress_and_result(server: str, token: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    photo = samples.camera_like_jpeg(tmp_path / "camera.jpg")
    edited, _ = samples.edited_copy(photo, tmp_path / "edited.jpg")
    browser.get(server + "/")
    browser.find_element(By.ID, "token").send_keys("wrong")
    browser.find_element(By.ID, "save-token").click()
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element((By.ID, "token-status"), "rejected"))
    browser.find_element(By.ID, "token").clear()
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "save-token").click()
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element((By.ID, "token-status"), "accepted"))

    browser.find_element(By.ID, "file").send_keys(str(edited))
    browser.find_element(By.ID, "upload").click()
    WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.ID, "progress")))
    WebDriverWait(browser, 240).until(ec.visibility_of_element_located((By.ID, "result")))
    assert not browser.find_element(By.ID, "error").is_displayed()

    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.text and ("band-" in verdict.get_attribute("class"))
    assert browser.find_element(By.ID, "asset-name").text.startswith("edited.jpg")
    assert browser.find_element(By.CSS_SELECTOR, "#timeline svg")
    assert "JSON SHA-256" in browser.find_element(By.ID, "report-hash").text
    frames = browser.find_elements(By.CSS_SELECTOR, "#frames img")
    assert frames and frames[0].get_attribute("src").startswith("blob:")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#frames img')].every(i => i.complete && i.naturalWidth > 0)"))
    before = frames[0].get_attribute("src")
    browser.find_element(By.CSS_SELECTOR, "input[name=view][value=overlay]").click()
    if "overlay" in frames[0].get_attribute("data-views"):
        assert frames[0].get_attribute("src") != before
    audit_rows = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    assert any("intake.accepted" in row.text and "alice" in row.text for row in audit_rows)
    assert browser.find_elements(By.CSS_SELECTOR, "#modules tbody tr")
    assert browser.find_element(By.ID, "download-pdf").is_enabled()
    browser.save_screenshot(str(tmp_path / "page.png"))


def test_video_result_shows_shots_and_the_video_policy_verdict(server: str, token: str, browser,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    video = samples.video_with_cut(tmp_path / "two_shots.mp4", seconds_each=1.0, size="320x180")
    browser.get(server + "/")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "save-token").click()
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element((By.ID, "token-status"), "accepted"))
    browser.find_element(By.ID, "file").send_keys(str(video))
    browser.find_element(By.ID, "upload").click()
    WebDriverWait(browser, 300).until(ec.visibility_of_element_located((By.ID, "result")))
    assert not browser.find_element(By.ID, "error").is_displayed()
    # videos are fused by video-v3 (a test pattern gives little evidence: BlazeFace finds a "face" in one frame)
    assert re.fullmatch(r"(likely real|unsure|likely manipulated)  ?p = 0\.\d{3}|no verdict",
                        browser.find_element(By.ID, "verdict").text)
    meaning = browser.find_element(By.ID, "verdict-meaning").text
    assert "video-v3/" in meaning or "no calibrated verdict" in meaning.lower()
    assert browser.find_element(By.CSS_SELECTOR, "#timeline svg")
    assert browser.find_elements(By.CSS_SELECTOR, "#frames img")
    browser.save_screenshot(str(tmp_path / "video-page.png"))
