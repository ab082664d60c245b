"""Take the README's screenshots of the chat page, against a throwaway copy of the whole system.

Run from the repository root (it uses the test harness, so nothing touches the dev data):

    uv run pytest docs/screenshots/take.py

It writes `signin.png`, `chat.png`, `settings.png` and `phone.png` next to this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from testkit import CHROMIUM, CHROMIUM_ARGS, System

HERE = Path(__file__).resolve().parent
QUESTION = (
    "Show me a **Markdown** reply:\n\n"
    "```python\ndef bill(tokens_in, tokens_out, price_in, price_out):\n"
    "    return (tokens_in * price_in + tokens_out * price_out) / 1000\n```\n\n"
    "- prices are per 1K tokens\n- money stays `Decimal`"
)


def log_in(page: Page) -> None:
    page.get_by_label("Username", exact=True).fill("demo")
    page.get_by_label("Password", exact=True).fill("demo-password")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()


@pytest.mark.browser
def test_take_screenshots(system: System) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        desktop = browser.new_context(
            base_url=system.gateway, viewport={"width": 1280, "height": 760}, color_scheme="light"
        )
        desktop.set_default_timeout(10_000)
        page = desktop.new_page()
        page.goto("/")
        expect(page.get_by_label("Username", exact=True)).to_be_focused()
        page.screenshot(path=HERE / "signin.png")

        log_in(page)
        send(page, "Hello! What can you do?")
        page.get_by_role("button", name="New chat", exact=True).click()
        page.get_by_role("combobox", name="Model", exact=True).select_option("qwen-plus")
        send(page, QUESTION)
        expect(page.locator("#chat-totals")).to_contain_text("tokens", timeout=10_000)
        page.wait_for_timeout(2500)  # the totals and bill settle after the completion event
        page.get_by_label("Message", exact=True).fill("Thanks!")
        page.screenshot(path=HERE / "chat.png")

        page.get_by_role("button", name="Settings", exact=True).click()
        expect(page.get_by_role("dialog", name="Settings")).to_contain_text("Your key")
        page.screenshot(path=HERE / "settings.png")

        phone = browser.new_context(
            base_url=system.gateway,
            viewport={"width": 390, "height": 760},
            is_mobile=True,
            color_scheme="light",
        )
        page = phone.new_page()
        page.goto("/")
        log_in(page)
        page.get_by_role("button", name="Chats", exact=True).click()
        conversations = page.get_by_role("navigation", name="Conversations", exact=True)
        conversations.get_by_role("button").filter(has_text="Show me a").click()
        page.get_by_role("log").evaluate("el => { el.scrollTop = 0; }")
        page.screenshot(path=HERE / "phone.png")
        browser.close()
