"""The web page in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) driven by selenium.

Type a sentence, pick a language and a speaker, press Play; the audio must start playing while it streams, the
audio element must hold playable audio of the right length, and the spectrogram must be drawn. The screenshot is
kept in the test's folder (and copied to `$MLMS_SERVER_SCREENSHOT` when set, which is how docs/server.md's picture
is made).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from server_testing import LONG_FRENCH

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "Chromium or its driver is not installed: apt-get install chromium chromium-driver (.ci/run does)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install '.[server]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

# This machine's network is closed: no background traffic, no updates, no QUIC; a fresh profile every time.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,1150",
)
AUDIO = "const audio = document.getElementById('audio'); "
TEXT = ". ".join(LONG_FRENCH.split(". ")[:3]) + "."  # three sentences: seconds of synthesis, so the stream has time


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="mlms-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_page_streams_plays_and_draws_the_spectrogram(server, browser, tmp_path):
    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(lambda driver: driver.find_element(By.ID, "play").is_enabled())
    # Every control has a label (the page is usable with a screen reader and the keyboard).
    for control in ("text", "voice", "lang", "speaker"):
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{control}']")
    text = browser.find_element(By.ID, "text")
    text.clear()
    text.send_keys(TEXT)
    Select(browser.find_element(By.ID, "lang")).select_by_value("fr")
    Select(browser.find_element(By.ID, "speaker")).select_by_value("en-gb-male")
    browser.find_element(By.ID, "play").click()
    done = "return window.mlmsLast && (window.mlmsLast.doneMs !== null || window.mlmsLast.error)"
    WebDriverWait(browser, 90).until(lambda driver: driver.execute_script(done))
    last = browser.execute_script("return window.mlmsLast")
    assert "error" not in last, last
    # Playback was scheduled with the first chunk, long before the stream ended.
    assert last["chunks"] > 3 and last["playbackScheduledMs"] < 0.5 * last["doneMs"], last
    # The page received exactly the audio the API gives for this request.
    params = {"text": TEXT, "lang": "fr", "speaker": "en-gb-male", "format": "pcm", "stream": "true"}
    status, _, pcm = server.request("GET", "/api/tts", params)
    assert status == 200 and last["samples"] == len(pcm) // 2 and last["sampleRate"] == 22050

    # The audio element holds playable audio of that length, and plays.
    WebDriverWait(browser, 20).until(lambda driver: driver.execute_script(AUDIO + "return audio.readyState >= 2"))
    duration, error = browser.execute_script(AUDIO + "return [audio.duration, audio.error && audio.error.code]")
    assert error is None and duration == pytest.approx(last["samples"] / 22050, abs=0.01)
    browser.execute_script(AUDIO + "audio.muted = true; return audio.play()")
    WebDriverWait(browser, 20).until(lambda driver: driver.execute_script(AUDIO + "return audio.currentTime > 0.2"))
    browser.execute_script(AUDIO + "audio.pause(); audio.currentTime = 0; audio.muted = false")
    link = browser.find_element(By.ID, "download")
    assert link.is_displayed() and link.get_attribute("download").endswith(".wav")
    assert link.get_attribute("href").startswith("blob:")

    # The spectrogram is drawn: varied pixels, and (speech) more energy in the lower half than the upper.
    stats = browser.execute_script(
        """
        const canvas = document.getElementById('spectrogram');
        const data = canvas.getContext('2d').getImageData(60, 0, canvas.width - 60, canvas.height).data;
        const rows = canvas.height, cols = canvas.width - 60;
        let sum = 0, sumSquares = 0, low = 0, high = 0;
        for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) {
          const i = 4 * (y * cols + x), value = (data[i] + data[i + 1] + data[i + 2]) / 3;
          sum += value; sumSquares += value * value;
          if (y < rows / 2) high += value; else low += value;
        }
        const n = rows * cols, mean = sum / n;
        return {ready: canvas.dataset.ready, std: Math.sqrt(sumSquares / n - mean * mean), low, high,
                label: canvas.getAttribute('aria-label')};
        """
    )
    assert stats["ready"] == "true" and stats["std"] > 10 and stats["low"] > 1.2 * stats["high"], stats
    assert "Spectrogram" in stats["label"]

    screenshot = tmp_path / "server_page.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    if os.environ.get("MLMS_SERVER_SCREENSHOT"):
        shutil.copyfile(screenshot, Path(os.environ["MLMS_SERVER_SCREENSHOT"]))


def test_page_shows_the_servers_error(server, browser):
    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(lambda driver: driver.find_element(By.ID, "play").is_enabled())
    text = browser.find_element(By.ID, "text")
    text.clear()
    text.send_keys("Привет, мир.")  # Cyrillic: the French frontend refuses it
    Select(browser.find_element(By.ID, "lang")).select_by_value("fr")
    browser.find_element(By.ID, "play").click()
    WebDriverWait(browser, 30).until(lambda driver: driver.execute_script("return !!(window.mlmsLast || {}).error"))
    status = browser.find_element(By.ID, "status")
    assert "400" in status.text and "CYRILLIC" in status.text and "error" in status.get_attribute("class")
