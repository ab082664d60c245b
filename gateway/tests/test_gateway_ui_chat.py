"""The chat page at `/`, driven in headless Chromium against the whole running system.

Plain `def` tests on Playwright's sync API (the suite's asyncio loop is not running during them). The
page is found by its accessible names, as a person with a screen reader would find it, and every flow
goes through the real gateway, services and the DashScope stand-in (which answers `Echo: <message>`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect, sync_playwright

from testkit import CHROMIUM, CHROMIUM_ARGS, System

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"
# the roles a name could be met with on this page, for counting elements by name
ROLES = [
    "alert",
    "button",
    "checkbox",
    "combobox",
    "dialog",
    "heading",
    "link",
    "listitem",
    "log",
    "navigation",
    "option",
    "region",
    "textbox",
]


@dataclass
class Account:
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, system: System) -> Iterator[Page]:
    context = browser.new_context(base_url=system.gateway, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def api(system: System) -> httpx.Client:
    return httpx.Client(base_url=system.gateway, timeout=30)


def make_account(system: System, *, apikey: str | None = "sk-test-key-1234") -> Account:
    """A registered user, made through the API (the UI's own Register is tested on its own)."""
    username = f"ui_{uuid.uuid4().hex[:12]}"
    with api(system) as client:
        assert client.post("/api/auth/register", json={"username": username, "password": PASSWORD}).is_success
        login = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        account = Account(username, PASSWORD, login.json()["data"]["access_token"])
        if apikey is not None:
            client.put("/api/users/me/apikey", json={"apikey": apikey}, headers=account.headers)
    return account


def conversations_of(system: System, account: Account) -> list[dict]:
    with api(system) as client:
        return client.get("/api/conversations", headers=account.headers).json()["data"]


def button(page: Page, name: str) -> Locator:
    return page.get_by_role("button", name=name, exact=True)


def conversation_list(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Conversations", exact=True)


def log_in(page: Page, username: str, password: str, *, reload: bool = True) -> None:
    """Sign in with the form; `reload=False` on the page as it is (what it kept in memory included)."""
    if reload:
        page.goto("/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    button(page, "Log in").click()
    expect(button(page, "Log out")).to_be_visible()


def open_signed_in(page: Page, account: Account) -> None:
    """Open the page as this account, its token stored as a login would store it (saves a password hash)."""
    page.context.add_init_script(
        "if (!sessionStorage.getItem('seeded')) {"
        f" localStorage.setItem('aigcspace.token', {json.dumps(account.token)});"
        " sessionStorage.setItem('seeded', '1'); }"
    )
    page.goto("/")
    expect(button(page, "Log out")).to_be_visible()


def send(page: Page, text: str) -> Locator:
    """Send a message; returns the reply bubble it starts."""
    page.get_by_label("Message", exact=True).fill(text)
    button(page, "Send").click()
    return page.locator(".msg.assistant").last


def chat_error(page: Page) -> Locator:
    return page.locator("#chat-error")


# ---- the "done when": the demo user, a streamed echo, the list, a reload


def test_demo_user_sees_the_reply_stream_in_and_keeps_it_after_a_reload(page: Page) -> None:
    log_in(page, "demo", "demo-password")
    text = f"hello {uuid.uuid4().hex[:6]} [[delay_ms:120]]"
    reply = send(page, text)
    # a part of the reply is on screen before the whole of it: it streams
    page.wait_for_function(
        "([el, full]) => el.textContent.startsWith('Echo') && !el.textContent.includes(full)",
        arg=[reply.element_handle(), text],
    )
    expect(reply).to_contain_text(f"Echo: {text}")
    expect(conversation_list(page).get_by_text(text[:50])).to_be_visible()

    page.reload()
    expect(button(page, "Log out")).to_be_visible()
    expect(conversation_list(page).get_by_text(text[:50])).to_be_visible()


# ---- signing in and out


def test_register_from_the_sign_in_form_signs_the_new_user_in(page: Page, system: System) -> None:
    username = f"ui_{uuid.uuid4().hex[:12]}"
    page.goto("/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    button(page, "Register").click()
    expect(button(page, "Log out")).to_be_visible()
    expect(page.get_by_text(username)).to_be_visible()
    with api(system) as client:
        assert client.post("/api/auth/login", json={"username": username, "password": PASSWORD}).is_success


def test_register_shows_why_a_taken_name_is_refused(page: Page, system: System) -> None:
    account = make_account(system)
    page.goto("/")
    page.get_by_label("Username", exact=True).fill(account.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    button(page, "Register").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(button(page, "Log out")).to_be_hidden()


def test_register_explains_the_rules_a_name_breaks(page: Page) -> None:
    page.goto("/")
    page.get_by_label("Username", exact=True).fill("a b")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    button(page, "Register").click()
    expect(page.get_by_role("alert")).to_have_text(
        "A username has 3–64 characters: letters, digits, _ . or -."
    )


def test_wrong_password_is_refused_with_a_message(page: Page, system: System) -> None:
    account = make_account(system)
    page.goto("/")
    page.get_by_label("Username", exact=True).fill(account.username)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    button(page, "Log in").click()
    expect(page.get_by_role("alert")).not_to_be_empty()
    expect(button(page, "Log in")).to_be_visible()


def test_log_out_returns_to_the_sign_in_form_and_forgets_the_token(page: Page, system: System) -> None:
    account = make_account(system)
    log_in(page, account.username, account.password)
    button(page, "Log out").click()
    expect(button(page, "Log in")).to_be_visible()
    assert page.evaluate("localStorage.getItem('aigcspace.token')") is None
    page.reload()
    expect(button(page, "Log in")).to_be_visible()
    expect(page.get_by_label("Message", exact=True)).to_be_hidden()


def test_log_out_leaves_nothing_of_the_user_for_the_next(page: Page, system: System) -> None:
    first, second = make_account(system), make_account(system)
    log_in(page, first.username, first.password)
    expect(send(page, "first's question")).to_contain_text("Echo: first's question")
    assert re.fullmatch(r"#c[0-9]+", page.evaluate("location.hash"))
    page.get_by_label("Message", exact=True).fill("first's private draft")
    button(page, "Log out").click()
    log_in(page, second.username, second.password, reload=False)
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(page.get_by_role("log")).not_to_contain_text("first's question")


def test_a_session_that_ends_gives_the_unsent_message_back_to_its_user_only(
    page: Page, system: System
) -> None:
    account, other = make_account(system), make_account(system)
    log_in(page, account.username, account.password)
    page.evaluate("localStorage.setItem('aigcspace.token', 'expired-or-revoked')")
    send(page, "sent as the session ended")
    expect(button(page, "Log in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("log in again")
    log_in(page, other.username, other.password, reload=False)
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    button(page, "Log out").click()

    log_in(page, account.username, account.password, reload=False)
    page.evaluate("localStorage.setItem('aigcspace.token', 'expired-again')")
    send(page, "mine to send again")
    expect(button(page, "Log in")).to_be_visible()
    log_in(page, account.username, account.password, reload=False)
    expect(page.get_by_label("Message", exact=True)).to_have_value("mine to send again")


def test_an_expired_session_goes_back_to_the_sign_in_form(page: Page) -> None:
    page.goto("/")
    page.evaluate("localStorage.setItem('aigcspace.token', 'not-a-valid-token')")
    page.reload()
    expect(button(page, "Log in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("log in again")


def test_each_name_belongs_to_one_element_on_screen(page: Page, system: System) -> None:
    signed_out = ["Username", "Password", "Log in", "Register"]
    signed_in = ["Message", "Model", "Send", "Stop", "Log out", "Conversations"]

    def on_screen(name: str) -> int:
        """Visible elements with this exact name, whatever their role (a labelled field counts once)."""
        by_role = sum(page.get_by_role(role, name=name, exact=True).count() for role in ROLES)
        return max(by_role, page.get_by_label(name, exact=True).filter(visible=True).count())

    page.goto("/")
    expect(button(page, "Log in")).to_be_visible()
    assert {name: on_screen(name) for name in signed_out + signed_in} == {
        **dict.fromkeys(signed_out, 1),
        **dict.fromkeys(signed_in, 0),
    }

    account = make_account(system)
    open_signed_in(page, account)
    send(page, "Stop")  # a conversation titled like a control never takes the control's name
    expect(page.locator(".msg.assistant").last).to_contain_text("Echo: Stop")
    expect(conversation_list(page)).to_contain_text("Stop")
    assert {name: on_screen(name) for name in signed_out + signed_in} == {
        **dict.fromkeys(signed_out, 0),
        **dict.fromkeys(signed_in, 1),
    }


# ---- chatting


def test_history_is_there_after_a_reload(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "first question")).to_contain_text("Echo: first question")
    expect(send(page, "second question")).to_contain_text("Echo: second question")

    page.reload()
    conversation_list(page).get_by_role("button", name=re.compile("^first question")).click()
    log = page.get_by_role("log")
    for text in ("first question", "Echo: first question", "second question", "Echo: second question"):
        expect(log.get_by_text(text, exact=True)).to_be_visible()


def test_a_reload_stays_in_the_open_conversation(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "where was I")).to_contain_text("Echo: where was I")
    page.reload()
    expect(page.get_by_role("heading", name="where was I")).to_be_visible()
    expect(page.get_by_role("log").get_by_text("Echo: where was I", exact=True)).to_be_visible()
    expect(conversation_list(page).locator('li[aria-current="page"]')).to_contain_text("where was I")
    button(page, "New chat").click()
    page.wait_for_function("location.hash === ''")


def test_an_address_naming_someone_elses_conversation_opens_a_new_chat(page: Page, system: System) -> None:
    owner, visitor = make_account(system), make_account(system)
    with api(system) as client:
        created = client.post("/api/conversations", json={"title": "not yours"}, headers=owner.headers)
    open_signed_in(page, visitor)
    page.goto(f"/#c{created.json()['data']['id']}")
    page.reload()  # a new hash alone loads nothing
    expect(button(page, "Log out")).to_be_visible()
    page.wait_for_function("location.hash === ''")  # the address no longer names it, once the 404 came
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(chat_error(page)).to_be_hidden()


def test_the_second_message_carries_the_conversation_so_far(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "one")).to_contain_text("Echo: one")
    expect(send(page, "two")).to_contain_text("Echo: two")
    conversations = conversations_of(system, account)
    assert len(conversations) == 1  # the second message went to the same conversation
    with httpx.Client(base_url=system.standin) as client:
        calls = [c for c in client.get("/_standin/calls").json() if c["api_key"] == "sk-test-key-1234"]
    assert calls[-1]["message_count"] == 3  # one, Echo: one, two


def test_tokens_and_bill_are_shown_after_the_reply(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    text = "count me [[tokens:40]]"
    expect(send(page, text)).not_to_have_attribute("aria-busy", "true")
    expected_tokens = len(text) + 40
    totals = page.locator("#chat-totals")
    expect(totals).to_contain_text(f"{expected_tokens} tokens", timeout=10_000)
    bill = conversations_of(system, account)[0]["bill"]
    expect(totals).to_contain_text(f"¥{bill}")
    expect(conversation_list(page)).to_contain_text(f"{expected_tokens} tokens · ¥{bill}")


def test_model_picker_shows_each_models_price(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    with api(system) as client:
        models = client.get("/api/llm/models", headers=account.headers).json()["data"]
    picker = page.get_by_role("combobox", name="Model", exact=True)
    options = picker.locator("option")
    expect(options).to_have_count(len(models))
    for option in options.all():
        expect(option).to_contain_text(re.compile(r"¥[0-9.]+ in / ¥[0-9.]+ out per 1K tokens"))
    picker.select_option("qwen-turbo")  # a simple price (demo data: 0.0003 and 0.0006 per 1K)
    expect(picker.locator("option:checked")).to_have_text(
        "Qwen Turbo — ¥0.0003 in / ¥0.0006 out per 1K tokens"
    )
    picker.select_option("qwen-plus")  # a tiered price: its tiers are spelt out under the picker
    expect(page.locator("#model-price")).to_contain_text("up to 128K: ¥0.0008 / ¥0.002")


def test_the_chosen_model_is_used(page: Page, system: System) -> None:
    account = make_account(system, apikey="sk-model-check-7788")
    open_signed_in(page, account)
    page.get_by_role("combobox", name="Model", exact=True).select_option("qwen-max")
    expect(send(page, "which model")).to_contain_text("Echo: which model")
    with httpx.Client(base_url=system.standin) as client:
        calls = [c for c in client.get("/_standin/calls").json() if c["api_key"] == "sk-model-check-7788"]
    assert calls[-1]["model"] == "qwen-max"


def test_markdown_renders_with_code_blocks(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    reply = send(page, "**bold** and\n\n```python\nprint('hi')\n```")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("pre code")).to_have_text("print('hi')")


def test_html_in_a_reply_never_runs(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    payload = (
        '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
        '<a href="javascript:window.__pwned=3">link</a> <iframe src="/"></iframe>'
    )
    reply = send(page, payload)
    expect(reply).to_contain_text("Echo:")
    expect(page.locator(".msg.assistant").last).not_to_have_attribute("aria-busy", "true")
    reply.get_by_text("link").click()
    assert page.evaluate("window.__pwned") is None
    assert reply.locator("img, script, iframe").count() == 0
    assert "javascript:" not in (reply.inner_html())
    # the user's own message is shown as text, never as HTML
    expect(page.locator(".msg.user").last).to_have_text(payload)


def test_a_reply_cannot_take_the_place_of_the_pages_own_elements(page: Page, system: System) -> None:
    """A reply holding `id="message"` once made every later Send fail (the page found the reply's element
    instead of its message box), for good: the history is drawn again on every visit."""
    account = make_account(system)
    open_signed_in(page, account)
    reply = send(page, 'clobber <span id="message" name="send-button">x</span>')
    expect(reply).to_contain_text("Echo: clobber")
    expect(page.locator(".msg.assistant").last).not_to_have_attribute("aria-busy", "true")
    assert reply.locator("[id], [name]").count() == 0
    expect(send(page, "still works")).to_contain_text("Echo: still works")


def test_stop_ends_the_reply_and_keeps_the_partial_text(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    reply = send(page, "long one [[delay_ms:150]][[tokens:400]]")
    page.wait_for_function("el => el.textContent.length > 8", arg=reply.element_handle())
    stop = button(page, "Stop")
    expect(stop).to_be_enabled()
    stop.click()
    expect(stop).to_be_disabled()
    expect(button(page, "Send")).to_be_enabled()
    shown = reply.locator(".markdown").inner_text()
    assert 0 < len(shown) < 400
    page.wait_for_timeout(600)
    assert reply.locator(".markdown").inner_text() == shown  # nothing more arrives
    expect(reply).to_contain_text("Stopped")

    def stored() -> str:
        conversation = conversations_of(system, account)
        if not conversation or conversation[0]["total_tokens"] == 0:
            return ""
        with api(system) as client:
            detail = client.get(f"/api/conversations/{conversation[0]['id']}", headers=account.headers)
        messages = detail.json()["data"]["messages"]
        return messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""

    content = ""
    for _ in range(50):  # recorded shortly after, from the completion event
        content = stored()
        if content:
            break
        page.wait_for_timeout(100)
    assert content.startswith(shown) and len(content) < 400  # the partial reply is kept and billed


def test_enter_sends_and_escape_stops(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    box = page.get_by_label("Message", exact=True)
    box.fill("keys [[delay_ms:150]][[tokens:200]]")
    box.press("Enter")
    reply = page.locator(".msg.assistant").last
    page.wait_for_function("el => el.textContent.length > 4", arg=reply.element_handle())
    page.keyboard.press("Escape")
    expect(button(page, "Stop")).to_be_disabled()
    expect(reply).to_contain_text("Stopped")
    expect(box).to_be_focused()


# ---- managing conversations


def test_rename_a_conversation(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "old title")).to_contain_text("Echo: old title")
    button(page, "Rename conversation old title").click()
    dialog = page.get_by_role("dialog", name="Rename conversation")
    dialog.get_by_label("Title", exact=True).fill("Brand new title")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(conversation_list(page)).to_contain_text("Brand new title")
    expect(page.get_by_role("heading", name="Conversation: Brand new title")).to_be_visible()
    assert conversations_of(system, account)[0]["title"] == "Brand new title"


def test_a_blank_title_is_shown_as_untitled(page: Page, system: System) -> None:
    account = make_account(system)
    with api(system) as client:
        created = client.post("/api/conversations", json={"title": "   "}, headers=account.headers)
    assert created.json()["data"]["title"] == "   "
    open_signed_in(page, account)
    expect(conversation_list(page)).to_contain_text("(untitled)")
    button(page, "Rename conversation (untitled)").click()
    expect(page.get_by_role("dialog", name="Rename conversation")).to_be_visible()


def test_delete_a_conversation_after_confirming(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "to be deleted")).to_contain_text("Echo: to be deleted")
    delete = button(page, "Delete conversation to be deleted")

    delete.click()
    dialog = page.get_by_role("dialog", name="Delete conversation?")
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog).to_be_hidden()
    assert len(conversations_of(system, account)) == 1  # cancelling keeps it

    delete.click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(conversation_list(page)).not_to_contain_text("to be deleted")
    expect(page.get_by_role("heading", name="Conversation: New chat")).to_be_visible()
    assert conversations_of(system, account) == []


def test_conversations_beyond_the_first_200_are_a_click_away(page: Page, system: System) -> None:
    account = make_account(system)
    with api(system) as client:
        for index in range(203):
            response = client.post(
                "/api/conversations", json={"title": f"conv {index:03}"}, headers=account.headers
            )
            assert response.status_code == 201
    open_signed_in(page, account)
    items = conversation_list(page).get_by_role("listitem")
    expect(items).to_have_count(200)
    expect(conversation_list(page).get_by_text("conv 000", exact=True)).to_have_count(0)
    button(page, "Show more (3 older)").click()
    expect(items).to_have_count(203)
    expect(conversation_list(page).get_by_text("conv 000", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Show more"))).to_be_hidden()


def test_leaving_a_reply_being_written_asks_first(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "earlier")).to_contain_text("Echo: earlier")
    button(page, "New chat").click()
    reply = send(page, "slow one [[delay_ms:150]][[tokens:400]]")
    page.wait_for_function("el => el.textContent.length > 8", arg=reply.element_handle())
    questions: list[str] = []
    answers = {"accept": False}

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept() if answers["accept"] else dialog.dismiss()

    page.on("dialog", answer)
    # the conversation being written is open already: choosing it again neither asks nor stops it
    conversation_list(page).get_by_role("button", name=re.compile("^slow one")).click()
    expect(button(page, "Stop")).to_be_enabled()
    assert questions == []
    conversation_list(page).get_by_role("button", name=re.compile("^earlier")).click()
    button(page, "Log out").click()
    expect(button(page, "Stop")).to_be_enabled()  # still writing, still here, still signed in
    assert len(questions) == 2 and all("still being written" in q for q in questions)

    answers["accept"] = True
    conversation_list(page).get_by_role("button", name=re.compile("^earlier")).click()
    expect(page.get_by_role("heading", name="earlier")).to_be_visible()
    expect(button(page, "Stop")).to_be_disabled()
    assert len(questions) == 3


def test_conversations_are_listed_newest_first(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    expect(send(page, "older chat")).to_contain_text("Echo: older chat")
    button(page, "New chat").click()
    expect(send(page, "newer chat")).to_contain_text("Echo: newer chat")
    titles = conversation_list(page).locator(".conv-title")
    expect(titles).to_have_text(["newer chat", "older chat"])


# ---- the DashScope key and the errors a chat can meet


def test_settings_sets_and_removes_the_key_showing_only_its_hint(page: Page, system: System) -> None:
    account = make_account(system, apikey=None)
    open_signed_in(page, account)
    button(page, "Settings").click()
    dialog = page.get_by_role("dialog", name="Settings")
    expect(dialog).to_contain_text("No key set")
    key = f"sk-{uuid.uuid4().hex}"
    dialog.get_by_label("New API key", exact=True).fill(key)
    dialog.get_by_role("button", name="Save key", exact=True).click()
    expect(dialog).to_contain_text(f"sk-…{key[-4:]}")
    assert key not in page.content()
    assert key[3:-4] not in page.content()

    dialog.get_by_role("button", name="Close", exact=True).click()
    expect(send(page, "with my key")).to_contain_text("Echo: with my key")

    button(page, "Settings").click()
    dialog.get_by_role("button", name="Remove key", exact=True).click()
    expect(dialog).to_contain_text("No key set")
    with api(system) as client:
        assert client.get("/api/users/me", headers=account.headers).json()["data"]["has_apikey"] is False


def test_a_missing_key_points_to_the_settings_panel(page: Page, system: System) -> None:
    account = make_account(system, apikey=None)
    open_signed_in(page, account)
    send(page, "no key yet")
    expect(chat_error(page)).to_contain_text("no DashScope API key")
    expect(page.get_by_label("Message", exact=True)).to_have_value("no key yet")  # kept to send again
    chat_error(page).get_by_role("button", name="Open settings").click()
    expect(page.get_by_role("dialog", name="Settings")).to_be_visible()


def test_throttling_is_explained(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    send(page, "slow down [[error:Throttling.RateQuota]]")
    expect(chat_error(page)).to_contain_text("throttling")


def test_an_upstream_failure_says_what_failed(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    send(page, "upstream down [[error:InternalError]]")
    expect(chat_error(page)).to_contain_text("DashScope failed (InternalError)")
    expect(chat_error(page)).not_to_contain_text("could not be reached")  # it answered, with an error


def test_an_error_mid_reply_keeps_the_text_and_says_so(page: Page, system: System) -> None:
    account = make_account(system)
    open_signed_in(page, account)
    reply = send(page, "half [[midstream_error:InternalError]]")
    expect(reply).to_contain_text("cut short")
    expect(reply).to_contain_text("InternalError")
    expect(reply.locator(".markdown")).to_contain_text("Echo")


# ---- phone width and the keyboard alone


def test_phone_width_chat_and_conversation_drawer(browser: Browser, system: System) -> None:
    account = make_account(system)
    context = browser.new_context(
        base_url=system.gateway, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    try:
        log_in(page, account.username, account.password)
        expect(send(page, "from my phone")).to_contain_text("Echo: from my phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing overflows sideways
        expect(conversation_list(page)).to_be_hidden()
        button(page, "Chats").click()
        expect(conversation_list(page)).to_contain_text("from my phone")
        button(page, "New chat").click()
        expect(conversation_list(page)).to_be_hidden()
    finally:
        context.close()


def test_keyboard_alone_signs_in_and_sends(page: Page, system: System) -> None:
    account = make_account(system)
    page.goto("/")
    expect(page.get_by_label("Username", exact=True)).to_be_focused()
    page.keyboard.type(account.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    page.keyboard.type(account.password)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    page.keyboard.type("typed only")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant").last).to_contain_text("Echo: typed only")
    expect(button(page, "Send")).to_be_enabled()

    def shift_tab_to_new_chat() -> None:
        for _ in range(15):
            page.keyboard.press("Shift+Tab")
            if page.evaluate("document.activeElement.textContent") == "New chat":
                return
        raise AssertionError("Shift+Tab never reached the New chat button")

    shift_tab_to_new_chat()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Conversation: New chat")).to_be_visible()
    shift_tab_to_new_chat()  # then Tab into the list, and Enter opens the conversation
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Conversation: typed only")).to_be_visible()
