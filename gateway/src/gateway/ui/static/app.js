// Entry point: signing in and out, the settings panel, the phone drawer, and wiring the parts.

import { api, describeValidation, onUnauthorized, token } from "./api.js";
import {
  closeChat,
  conversationInAddress,
  hideError,
  initChat,
  loadModels,
  mayLeaveReply,
  newChat,
  openConversation,
  renderMessages,
  showHeader,
} from "./chat.js";
import { initConversations, refreshList, renderList } from "./conversations.js";
import { $, resetState, state } from "./state.js";

// ---- signing in and out

// What the message box held when its user was signed out (a session that ended): given back to the
// same user only, never shown to whoever signs in next on this page.
let unsent = { userId: null, text: "" };

async function signIn(username, password) {
  const data = await api.login(username, password);
  token.set(data.access_token);
  await enter();
}

/** Show the chat for the token in storage; the token is checked by the first call. */
async function enter() {
  state.me = await api.me();
  await Promise.all([loadModels(), refreshList()]); // ready to send once it shows
  $("signin").hidden = true;
  $("app").hidden = false;
  $("whoami").textContent = state.me.username;
  $("signin-form").reset();
  const id = conversationInAddress();
  if (id === null) newChat();
  else await openConversation(id, { quiet: true }).then(renderList);
  if (unsent.userId === state.me.id) $("message").value = unsent.text;
  unsent = { userId: null, text: "" };
  $("message").focus();
}

function signOut(reason = "", { keepToken = false, forget = false } = {}) {
  if (!keepToken) token.clear();
  const unanswered = closeChat();
  unsent = forget ? { userId: null, text: "" } : { userId: state.me?.id ?? null, text: unanswered };
  if (forget) history.replaceState(null, "", location.pathname); // the next user starts afresh
  resetState();
  $("app").hidden = true;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("conversation-list").replaceChildren();
  renderMessages();
  $("signin").hidden = false;
  showSigninError(reason);
  $("username").focus();
}

function showSigninError(text) {
  $("signin-error").textContent = text;
  $("signin-error").hidden = !text;
}

// what the register rules are, said plainly (the API's own field messages are for developers)
const FIELD_RULES = {
  username: "A username has 3–64 characters: letters, digits, _ . or -.",
  password: "A password has 8–128 characters.",
};

function explainSignin(error) {
  if (error.status !== 422 || !Array.isArray(error.data)) return error.message;
  const fields = error.data.map((item) => item.loc?.[item.loc.length - 1]);
  const rules = [...new Set(fields)].map((field) => FIELD_RULES[field]).filter(Boolean);
  return rules.length ? rules.join(" ") : describeValidation(error);
}

/** Run one sign-in action with both buttons disabled, so a double click sends it once. */
async function signinAction(action, missing) {
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) return showSigninError(missing);
  showSigninError("");
  const buttons = [$("login-button"), $("register-button")];
  for (const button of buttons) button.disabled = true;
  try {
    await action(username, password);
  } catch (error) {
    showSigninError(explainSignin(error));
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signinAction(signIn, "Enter your username and password.");
});

$("register-button").addEventListener("click", () => {
  signinAction(async (username, password) => {
    await api.register(username, password);
    await signIn(username, password);
  }, "Choose a username and a password, then press Register.");
});

$("logout-button").addEventListener("click", () => {
  if (mayLeaveReply()) signOut("", { forget: true });
});
// closing or reloading the page while a reply is being written asks the browser's own question
window.addEventListener("beforeunload", (event) => {
  if (state.stream) event.preventDefault();
});
onUnauthorized(() => {
  if (!$("app").hidden) signOut("Your session has ended. Please log in again.");
});

// ---- settings: the DashScope key, shown only by its hint

function showKeyStatus() {
  const status = $("apikey-status");
  if (state.me?.has_apikey) {
    const hint = document.createElement("code");
    hint.textContent = state.me.apikey_hint;
    status.replaceChildren("Your key: ", hint);
  } else {
    status.textContent = "No key set. Chats need your own DashScope key.";
  }
  $("apikey-remove").disabled = !state.me?.has_apikey;
}

function openSettings() {
  $("apikey-input").value = "";
  $("apikey-message").textContent = "";
  showKeyStatus();
  closeDrawer();
  $("settings-dialog").showModal();
  $("apikey-input").focus();
}

async function changeKey(action, done) {
  try {
    state.me = await action();
    hideError(); // an error about the key is out of date now
    $("apikey-input").value = "";
    $("apikey-message").textContent = done;
    showKeyStatus();
  } catch (error) {
    $("apikey-message").textContent = describeValidation(error);
  }
}

$("settings-button").addEventListener("click", openSettings);
$("settings-close").addEventListener("click", () => $("settings-dialog").close());
$("apikey-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("apikey-input").value.trim();
  if (!key) {
    $("apikey-message").textContent = "Paste your DashScope API key first.";
    return $("apikey-input").focus();
  }
  await changeKey(() => api.setApiKey(key), "Key saved.");
});
$("apikey-remove").addEventListener("click", async () => {
  await changeKey(async () => {
    await api.removeApiKey();
    return api.me();
  }, "Key removed.");
  $("apikey-input").focus();
});

// ---- phone width: the conversation list is a drawer

function closeDrawer() {
  $("app").classList.remove("drawer-open");
  $("drawer-toggle").setAttribute("aria-expanded", "false");
}

$("drawer-toggle").addEventListener("click", () => {
  const open = $("app").classList.toggle("drawer-open");
  $("drawer-toggle").setAttribute("aria-expanded", String(open));
  if (open) $("new-chat").focus();
});
// a tap beside the open drawer closes it, and does nothing else
$("chat").addEventListener(
  "click",
  (event) => {
    if (!$("app").classList.contains("drawer-open")) return;
    event.preventDefault();
    event.stopPropagation();
    closeDrawer();
  },
  { capture: true },
);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && $("app").classList.contains("drawer-open")) {
    closeDrawer();
    $("drawer-toggle").focus();
  }
});

// ---- wiring

initChat({ refreshList: () => refreshList().then(showHeader), openSettings });
initConversations({
  open: async (id) => {
    closeDrawer();
    if (id === state.currentId) return; // already open (a reply may be being written into it)
    if (!mayLeaveReply()) return;
    await openConversation(id);
    renderList();
    $("message").focus();
  },
  renamed: (conversation) => showHeader(conversation),
  deleted: (id) => {
    if (state.currentId === id) newChat();
    $("message").focus();
  },
});
$("new-chat").addEventListener("click", () => {
  if (!mayLeaveReply()) return;
  closeDrawer();
  newChat();
  renderList();
  $("message").focus();
});

if (token.get()) {
  enter().catch((error) => {
    // an expired token means signing in again; a server that is down does not
    if (error.status === 401) signOut("Your session has ended. Please log in again.");
    else signOut("The server cannot be reached. Reload the page in a moment.", { keepToken: true });
  });
} else {
  signOut();
}
