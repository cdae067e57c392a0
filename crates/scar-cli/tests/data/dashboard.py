"""Drives `scar serve`'s dashboard in Debian's headless Chromium through Playwright.

Usage: dashboard.py ENDPOINT INPUT_DIR SCREENSHOT_DIR SECRET...

Uploads every file of INPUT_DIR into the first function's input folder through the page's
upload form, waits (from the page alone) until the chain picture shows both steps done,
follows the failed invocation's log link, checks that the duration chart has points, and
that no SECRET appears in the page or any /api answer. Prints one JSON line of what it saw.
"""

import json
import os
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode("utf-8", "replace")


def main():
    endpoint, inputs, shots, *secrets = sys.argv[1:]
    os.makedirs(shots, exist_ok=True)
    files = sorted(os.path.join(inputs, f) for f in os.listdir(inputs))
    good = [f for f in files if not os.path.basename(f).startswith("bad")]
    seen = {}
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, args=ARGS,
            viewport={"width": 1280, "height": 800}, accept_downloads=True,
            # The page forbids eval (its CSP); Playwright's wait_for_function needs it.
            bypass_csp=True,
        )
        # Waits end as soon as their condition holds; the bound is for a loaded CI machine.
        browser.set_default_timeout(60000)
        page = browser.pages[0] if browser.pages else browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(endpoint + "/")  # the URL `scar serve` prints as its dashboard
        page.wait_for_selector("#chain-picture g.node[data-function=one]", timeout=60000)
        page.wait_for_selector("#upload-folder option", state="attached", timeout=60000)
        page.select_option("#upload-folder", label="flow/start")
        page.set_input_files("#upload-files", files)
        page.click("#upload button[type=submit]")
        page.wait_for_function(
            "document.getElementById('upload-status').textContent.includes('uploaded')",
            timeout=60000,
        )
        one = "#chain-picture g.node[data-function=one]"
        two = "#chain-picture g.node[data-function=two]"
        page.wait_for_function(
            f"""() => {{
                const a = document.querySelector({json.dumps(one)});
                const b = document.querySelector({json.dumps(two)});
                return a && b && a.dataset.done === "{len(good)}" && a.dataset.failed === "1"
                    && b.dataset.done === "{len(good)}";
            }}""",
            timeout=180000,
        )
        for name, sel in (("one", one), ("two", two)):
            node = page.locator(sel)
            seen[name] = {
                k: int(node.get_attribute("data-" + k))
                for k in ("waiting", "running", "done", "failed", "timed-out", "loop-stopped")
            }
            seen[name]["text"] = node.locator("text.count-done").text_content()
        # The duration chart has points (from the REPORT lines).
        page.wait_for_selector("#charts-body figure[data-function=one] svg.duration circle.point",
                               state="attached", timeout=60000)
        seen["duration_points"] = page.locator("svg.duration circle.point").count()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(shots, "dashboard-1280x800.png"))
        page.locator("#charts").screenshot(path=os.path.join(shots, "dashboard-charts.png"))
        page.locator("#buckets").screenshot(path=os.path.join(shots, "dashboard-buckets.png"))
        page.screenshot(path=os.path.join(shots, "dashboard-full.png"), full_page=True)
        # The failed file, found with the outcome filter, and its log link.
        page.select_option("#filter-outcome", "failed")
        page.wait_for_function(
            """() => {
                const rows = Array.from(document.querySelectorAll('#invocations-body tr'));
                return rows.length > 0 && rows.every((r) => r.dataset.outcome === 'failed');
            }""",
            timeout=60000,
        )
        row = page.locator("#invocations-body tr[data-outcome=failed]").first
        row.wait_for(timeout=60000)
        seen["failed_key"] = row.get_attribute("data-key")
        seen["failed_request_id"] = row.get_attribute("data-request-id")
        seen["failed_rows"] = page.locator("#invocations-body tr").count()
        with browser.expect_page() as opened:
            row.locator("a.log-link").click()
        log_page = opened.value
        log_page.wait_for_load_state()
        seen["log"] = log_page.locator("body").inner_text()
        log_page.close()
        # Keyboard: the log link is reachable with Tab.
        page.focus("#filter-outcome")
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.classList.contains('log-link')"):
                seen["log_link_by_keyboard"] = True
                break
        # A chain node is a button: Enter on "two" lists only two's invocations.
        page.select_option("#filter-outcome", "")
        page.focus("#chain-picture g.node[data-function=two]")
        page.keyboard.press("Enter")
        page.wait_for_function(
            """() => {
                const rows = Array.from(document.querySelectorAll('#invocations-body tr'));
                return rows.length > 0 && rows.every((r) => r.dataset.function === 'two');
            }""",
            timeout=60000,
        )
        seen["two_rows"] = page.locator("#invocations-body tr").count()
        page.select_option("#filter-function", "")
        # A narrow window.
        page.set_viewport_size({"width": 420, "height": 800})
        page.select_option("#filter-outcome", "")
        page.wait_for_function("document.querySelectorAll('#invocations-body tr').length > 1")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(shots, "dashboard-narrow.png"))
        # The chain is drawn top to bottom when it does not fit across.
        page.wait_for_function(
            """() => {
                const a = document.querySelector('#chain-picture g.node[data-function=one]');
                const b = document.querySelector('#chain-picture g.node[data-function=two]');
                return a && b && b.getBoundingClientRect().top > a.getBoundingClientRect().bottom;
            }""",
            timeout=60000,
        )
        page.locator("#chain").screenshot(path=os.path.join(shots, "dashboard-narrow-chain.png"))
        page.locator("#invocations").scroll_into_view_if_needed()
        page.screenshot(path=os.path.join(shots, "dashboard-narrow-invocations.png"))
        seen["page_errors"] = errors
        html = page.content()
        browser.close()
    # No secret anywhere the dashboard answers.
    answers = {"/": html}
    for path in ["/", "/dashboard/app.js", "/api/functions", "/api/chain", "/api/stats",
                 "/api/invocations", "/api/snapshot", "/api/buckets",
                 "/api/buckets/flow", "/api/buckets/flow?prefix=start"]:
        answers[path] = get(endpoint + path)
    leaks = [(path, s) for path, text in answers.items() for s in secrets if s in text]
    seen["leaks"] = leaks
    seen["api_stats"] = json.loads(answers["/api/stats"])
    seen["api_invocations_failed"] = json.loads(
        get(endpoint + "/api/invocations?function=one&outcome=failed"))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
