#!/usr/bin/env python3
"""Drives the gateway's browser playground (Playground/, served at /) in headless Chromium and checks that every
tab works against a running gateway with the default models plus the llava-tiny and clip-tiny fixtures:

    .venv/bin/pip install selenium==4.50.0      # once; Debian's chromium and chromium-driver from apt
    .venv/bin/python scripts/playground_check.py http://127.0.0.1:7280 --wav lights.wav --expect lights \\
        --screenshots /tmp/shots [--api-key-url http://127.0.0.1:7281]

--api-key-url names a second gateway started with `--api-key sk-playground` (the key prompt is checked there).
Prints one line per check and, last, one JSON line {"passed": [...], "failed": [...]}; exits 1 when any check
fails. Every wait polls against a deadline (WebDriverWait); nothing sleeps a fixed time before an assertion."""
import argparse
import base64
import json
import os
import sys
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("base_url")
parser.add_argument("--wav", required=True, help="a WAV file to transcribe")
parser.add_argument("--expect", required=True, help="text the transcript contains (case-insensitive)")
parser.add_argument("--screenshots", required=True, help="folder for one screenshot per tab")
parser.add_argument("--api-key-url", help="a gateway started with --api-key sk-playground")
parser.add_argument("--api-key", default="sk-playground")
parser.add_argument("--search-images", nargs=2, default=[
    os.path.join(ROOT, "Tests/VisionServiceTests/Fixtures/clip/input_image.png"),
    os.path.join(ROOT, "Tests/ChorusLLaVATests/Fixtures/llava/input_image.png")])
parser.add_argument("--chat-model", default="llava-tiny")
parser.add_argument("--chat-throughput", type=float, default=800,
                    help="bytes/s the page may read while the chat streams (-1: no limit), so Stop can land mid-answer")
parser.add_argument("--timeout", type=float, default=180, help="seconds any one wait may take")
args = parser.parse_args()
BASE = args.base_url.rstrip("/")
os.makedirs(args.screenshots, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             "--window-size=1280,900"):
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_script_timeout(30)

passed, failed = [], []
requested = []  # every URL the pages asked for (Network.requestWillBeSent), drained after each check


def drain_network_log():
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])


def check(name):
    def run(body):
        try:
            body()
            passed.append(name)
            print(f"ok   {name}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported by name
            failed.append(name)
            reason = f"{type(error).__name__}: {error}".strip()
            print(f"FAIL {name}: {reason}\n{traceback.format_exc()}", flush=True)
            try:  # the page's own errors say most about a failure
                for entry in driver.get_log("browser"):
                    if entry["level"] in ("SEVERE", "WARNING"):
                        print(f"     console: {entry['message']}", flush=True)
            except Exception:  # noqa: BLE001
                pass
        finally:
            try:
                drain_network_log()
                driver.get_log("browser")  # read: the next check's failure shows only its own messages
            except Exception:  # noqa: BLE001 - a dead session fails the next check anyway
                pass
    return run


class PageError(AssertionError):
    """The page showed an error box while a check waited for a result."""


def wait(condition, message, timeout=None, error=None):
    """Polls `condition` (no arguments) until it answers something truthy, and returns that answer. With `error`
    (an error box's id), stops at once when the page shows that error instead."""
    def poll(_):
        result = condition()
        if not result and error and error_text(error):
            raise PageError(error_text(error))
        return result
    return WebDriverWait(driver, timeout or args.timeout, poll_frequency=0.1).until(poll, message)


def by_id(element_id):
    return driver.find_element(By.ID, element_id)


def js(script, *arguments):
    return driver.execute_script(script, *arguments)


def open_tab(name):
    by_id(f"tab-{name}").click()
    wait(lambda: by_id(f"panel-{name}").is_displayed(), f"the {name} panel shows")


def screenshot(filename):
    """The whole page, beyond the window's height, as a PNG."""
    height = js("return Math.max(document.documentElement.scrollHeight, window.innerHeight)")
    width = js("return window.innerWidth")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    with open(os.path.join(args.screenshots, filename), "wb") as file:
        file.write(base64.b64decode(shot["data"]))


def type_into(element_id, text):
    element = by_id(element_id)
    element.clear()
    element.send_keys(text)


def error_text(element_id):
    element = by_id(element_id)
    return element.text if element.is_displayed() else ""


def load_page(url):
    driver.get(url + "/")
    wait(lambda: by_id("app").is_displayed() or by_id("key-panel").is_displayed(), "the page starts")


# ---------------------------------------------------------------------------------------------------------

@check("page loads with its tabs; arrow keys move between them")
def _():
    load_page(BASE)
    assert by_id("app").is_displayed(), "the app is hidden: " + by_id("conn").text
    tabs = driver.find_elements(By.CSS_SELECTOR, "#tabs[role=tablist] [role=tab]")
    names = [tab.text for tab in tabs]
    assert names == ["Chat", "Images", "Speech to text", "Text to speech", "Search", "Pipelines", "Status"], names
    panels = driver.find_elements(By.CSS_SELECTOR, "[role=tabpanel]")
    assert len(panels) == 7, len(panels)
    by_id("tab-chat").click()
    by_id("tab-chat").send_keys(Keys.ARROW_RIGHT)
    wait(lambda: by_id("tab-images").get_attribute("aria-selected") == "true" and by_id("panel-images").is_displayed()
         and driver.switch_to.active_element.get_attribute("id") == "tab-images", "ArrowRight selects Images")
    driver.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    wait(lambda: by_id("tab-chat").get_attribute("aria-selected") == "true", "ArrowLeft selects Chat")
    assert by_id("tab-chat").get_attribute("tabindex") == "0" and by_id("tab-images").get_attribute("tabindex") == "-1"


@check("speech to text: upload a WAV, segments stream in with the expected text")
def _():
    open_tab("stt")
    by_id("stt-file").send_keys(os.path.abspath(args.wav))
    wait(lambda: by_id("stt-audio").is_displayed(), "the audio is loaded")
    by_id("stt-run").click()
    text = wait(lambda: args.expect.lower() in by_id("stt-segments").text.lower() and by_id("stt-segments").text,
                f"'{args.expect}' appears in the segments", error="stt-error")
    wait(lambda: by_id("stt-srt").is_displayed() and by_id("stt-vtt").is_displayed(), "the SRT and VTT downloads appear")
    for link, suffix in (("stt-srt", ".srt"), ("stt-vtt", ".vtt")):
        href, name = by_id(link).get_attribute("href"), by_id(link).get_attribute("download")
        assert href.startswith("blob:") and name.endswith(suffix), (href, name)
    print(f"     segments: {text.strip()!r}", flush=True)
    screenshot("speech-to-text.png")


@check("text to speech: playback starts on the first chunk, the whole audio ends in <audio>")
def _():
    open_tab("tts")
    wait(lambda: len(Select(by_id("tts-voice")).options) > 0, "the voices are listed")
    type_into("tts-text", "Hello from the playground. This is the second sentence. And here is the third one.")
    by_id("tts-run").click()
    duration = wait(lambda: js("const a = document.getElementById('tts-audio');"
                               "return !a.hidden && isFinite(a.duration) && a.duration > 0 ? a.duration : null"),
                    "the <audio> element has a finite duration", error="tts-error")
    status = by_id("tts-status")
    chunks, first = status.get_attribute("data-chunks"), status.get_attribute("data-first-play-chunks")
    print(f"     duration {duration:.2f} s, {chunks} chunks, first played with {first} received, "
          f"after {status.get_attribute('data-first-play-ms')} ms", flush=True)
    assert int(chunks) >= 2, f"{chunks} chunks for three sentences"
    # The page starts the first sentence as soon as it is decoded; that it began before the last sentence arrived is
    # what matters (decoding is milliseconds, a sentence's synthesis far longer, so this is 1 in practice).
    assert first is not None and int(first) < int(chunks), f"playback began with {first} of {chunks} chunks received: it waited for all"
    assert by_id("tts-download").get_attribute("href").startswith("blob:")
    screenshot("text-to-speech.png")


@check("images: terrain streams progress to 100, the image appears with its seed and a download")
def _():
    open_tab("images")
    wait(lambda: "terrain" in [o.get_attribute("value") for o in Select(by_id("img-model")).options], "terrain is offered")
    Select(by_id("img-model")).select_by_value("terrain")
    by_id("img-generate").click()
    wait(lambda: by_id("img-progress").get_attribute("aria-valuenow") == "100", "the progress bar reaches 100", error="img-error")
    wait(lambda: js("const i = document.querySelector('#img-results figure.result img');"
                    "return i && i.complete && i.naturalWidth > 0"), "the image is shown")
    seed = by_id("img-results").find_element(By.CSS_SELECTOR, ".seed").text
    assert seed.isdigit(), f"seed {seed!r}"
    link = by_id("img-results").find_element(By.CSS_SELECTOR, "a[download]")
    assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download").endswith(".png")
    print(f"     seed {seed}, {by_id('img-progress-label').text}", flush=True)
    screenshot("images.png")


def answer_length(index):
    return js("const a = document.querySelectorAll('#chat-log .msg.assistant')[arguments[0]];"
              "return a ? a.querySelector('.body').textContent.length : -1", index)


def answer_state(index):
    return js("const a = document.querySelectorAll('#chat-log .msg.assistant')[arguments[0]]; return a ? a.dataset.state : null", index)


@check("chat: tokens stream, Stop ends the answer, a second turn works")
def _():
    open_tab("chat")
    wait(lambda: args.chat_model in [o.get_attribute("value") for o in Select(by_id("chat-model")).options], f"{args.chat_model} is offered")
    Select(by_id("chat-model")).select_by_value(args.chat_model)
    type_into("chat-max-tokens", "200")
    # Sampling is seeded (seed 0), so this is the same answer every time: with llava-tiny, 21 visible pieces
    # before it reaches its 128-token context (greedy, most of its tokens are stray bytes that print nothing).
    type_into("chat-temperature", "0.8")
    type_into("chat-input", "Tell me a long story about the sea.")
    # llava-tiny makes a token in ~2 ms, faster than anyone can press Stop: a slow network (800 bytes/s, some
    # 4 events a second) lets the tokens arrive one by one, as they would from a big model.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": args.chat_throughput, "uploadThroughput": -1})
    try:
        by_id("chat-send").click()
        first = wait(lambda: answer_length(0) > 0 and answer_length(0), "the first tokens arrive", timeout=60, error="chat-error")
        assert answer_state(0) == "streaming", f"the answer was already {answer_state(0)} with {first} characters"
        def grown():
            assert answer_state(0) == "streaming", f"the answer ended ({answer_state(0)}) before Stop could be pressed"
            return answer_length(0) > first
        wait(grown, "more tokens stream in", error="chat-error")
        by_id("chat-stop").click()
        wait(lambda: answer_state(0) == "stopped", "the answer is marked stopped")
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    assert "Stopped" in by_id("chat-status").text and "Stopped" in driver.find_element(By.CSS_SELECTOR, "#chat-log .msg.assistant .meta").text
    stopped_at = answer_length(0)
    try:
        WebDriverWait(driver, 2, poll_frequency=0.1).until(lambda _: answer_length(0) != stopped_at)
        raise AssertionError(f"the answer grew after Stop: {stopped_at} → {answer_length(0)} characters")
    except TimeoutException:
        pass
    print(f"     stopped at {stopped_at} characters ({driver.find_element(By.CSS_SELECTOR, '#chat-log .msg.assistant .meta').text})", flush=True)
    type_into("chat-max-tokens", "8")
    type_into("chat-input", "And then?")
    by_id("chat-input").send_keys(Keys.ENTER)
    wait(lambda: answer_state(1) == "done", "the second answer completes", error="chat-error")
    assert answer_length(1) > 0, "the second answer is empty"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .msg.user")) == 2
    screenshot("chat.png")


@check("search: two images indexed, a text search shows both thumbnails with scores")
def _():
    open_tab("search")
    wait(lambda: len(Select(by_id("search-model")).options) > 0, "a CLIP model is offered")
    by_id("search-clear").click()  # a fresh index: an earlier run's ids would have no thumbnails here
    wait(lambda: "empty now" in by_id("search-status").text, "the index is emptied", error="search-error")
    by_id("search-files").send_keys("\n".join(os.path.abspath(path) for path in args.search_images))
    by_id("search-add").click()
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#search-gallery figure img")) == 2, "two images are indexed", error="search-error")
    type_into("search-text", "a cat")
    by_id("search-run").click()
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#search-results .hit img")) == 2, "two hits with thumbnails", error="search-error")
    scores = [float(s.text) for s in driver.find_elements(By.CSS_SELECTOR, "#search-results .hit .score")]
    assert len(scores) == 2 and all(-1 <= s <= 1 for s in scores), scores
    assert js("return [...document.querySelectorAll('#search-results .hit img')].every(i => i.complete && i.naturalWidth > 0)")
    print(f"     scores {scores}", flush=True)
    screenshot("search.png")


@check("pipelines: zero-shot runs and its step is on the timeline")
def _():
    open_tab("pipelines")
    Select(by_id("pipe-recipe")).select_by_value("zero-shot")
    type_into("pipe-in-labels", '["a cat", "a dog"]')
    by_id("pipe-image").send_keys(os.path.abspath(args.search_images[0]))
    by_id("pipe-run").click()
    step = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pipe-timeline li.step[data-step=classify]"),
                "the classify step appears", error="pipe-error")[0]
    assert step.get_attribute("data-state") == "done", step.text
    assert "a cat" in step.text and "a dog" in step.text, step.text
    wait(lambda: "1 step" in by_id("pipe-status").text, "the run is reported finished")
    width = js("return parseFloat(document.querySelector('#pipe-timeline .bar').style.width)")
    assert width > 0, width
    print(f"     {step.find_element(By.CSS_SELECTOR, '.gist').text} · {by_id('pipe-status').text}", flush=True)
    screenshot("pipelines.png")


@check("status: vision, diffusion and speech with healthy replicas, in flight, queue and memory, refreshed live")
def _():
    open_tab("status")
    for name in ("vision", "diffusion", "speech"):
        card = wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#status-services [data-service={name}] .memory"),
                    f"{name}'s status is shown")[0].find_element(By.XPATH, "ancestor::article")
        replicas = card.find_element(By.CSS_SELECTOR, ".replicas").text
        healthy, total = (int(x) for x in replicas.split("/"))
        assert healthy >= 1 and healthy == total, f"{name}: {replicas}"
        assert "up" in card.get_attribute("class").split(), f"{name} is shown down: {card.text}"
        for field in ("in-flight", "queue", "memory"):
            assert card.find_element(By.CSS_SELECTOR, f".{field}").text.strip(), f"{name} has no {field}"
        assert "B" in card.find_element(By.CSS_SELECTOR, ".memory").text
    first = by_id("status-updated").text
    wait(lambda: by_id("status-updated").text != first, "the status refreshes by itself", timeout=10)
    assert by_id("status-summary").text == "Ready", by_id("status-summary").text
    screenshot("status.png")


@check("narrow (375 px): no tab scrolls sideways")
def _():
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True})
    try:
        for name in ("images", "stt", "tts", "search", "pipelines", "status", "chat"):
            open_tab(name)
            overflow = js("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the {name} tab is {overflow} px wider than the screen"
        screenshot("narrow.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


if args.api_key_url:
    KEY_BASE = args.api_key_url.rstrip("/")

    @check("API key: the prompt shows, a wrong key gets the API's message, the right one loads the models")
    def _():
        load_page(KEY_BASE)
        assert by_id("key-panel").is_displayed() and not by_id("app").is_displayed(), "no key prompt"
        type_into("key-input", "sk-wrong")
        by_id("key-submit").click()
        message = wait(lambda: error_text("key-error"), "the refusal is shown")
        assert "incorrect API key" in message, message
        screenshot("api-key.png")
        type_into("key-input", args.api_key)
        by_id("key-submit").click()
        wait(lambda: by_id("app").is_displayed() and len(Select(by_id("chat-model")).options) > 0, "the models load with the key")
        stored = js("return [sessionStorage.getItem('chorus-api-key'), localStorage.length, document.cookie]")
        assert stored == [args.api_key, 0, ""], stored
        print(f"     refused: {message!r}; then {by_id('conn').text}", flush=True)


@check("no request leaves the gateway's origin")
def _():
    allowed = [BASE + "/"] + ([args.api_key_url.rstrip("/") + "/"] if args.api_key_url else [])
    outside = sorted({url for url in requested if not url.startswith(("data:", "blob:")) and not url.startswith(tuple(allowed))})
    assert requested, "the network log is empty"
    assert not outside, outside
    print(f"     {len(requested)} requests, all to {', '.join(allowed)} (or data:/blob:)", flush=True)


driver.quit()
print(json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
