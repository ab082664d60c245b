// The open conversation: its messages, the model picker, the message box, Send and Stop.

import { api, ApiError } from "./api.js";
import * as fmt from "./format.js";
import { renderMarkdown } from "./markdown.js";
import { $, state } from "./state.js";
import { streamChat } from "./stream.js";

const modelKey = () => `aigcspace.model.${state.me?.id ?? ""}`; // each user's own choice
// Tokens and bill are recorded from the completion event shortly after a reply ends (under 1 s), so
// the conversation is fetched again a little later, twice in case the first one is early.
const REFRESH_DELAYS_MS = [700, 2000];

let hooks = { refreshList: async () => {}, openSettings: () => {} };
// Bumped whenever another conversation is shown, so a late answer never lands in the wrong one.
let view = 0;

export function initChat(options) {
  hooks = { ...hooks, ...options };
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("message").addEventListener("input", autosize);
  $("stop-button").addEventListener("click", stop);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.stream && !document.querySelector("dialog[open]")) stop();
  });
  $("model").addEventListener("change", () => {
    localStorage.setItem(modelKey(), $("model").value);
    showModelPrice();
  });
  $("chat-error-settings").addEventListener("click", () => hooks.openSettings());
}

/** Fill the picker; on failure it stays empty and the next Send tries again. */
export async function loadModels() {
  try {
    state.models = await api.models();
  } catch {
    state.models = [];
  }
  const select = $("model");
  select.replaceChildren(
    ...state.models.map((m) => new Option(`${m.display_name || m.name} — ${fmt.modelPrice(m.pricing)}`, m.name)),
  );
  const saved = localStorage.getItem(modelKey());
  if (saved && state.models.some((m) => m.name === saved)) select.value = saved;
  showModelPrice();
}

function showModelPrice() {
  const model = state.models.find((m) => m.name === $("model").value);
  if (!model) {
    $("model-price").textContent = "No model is available right now.";
  } else {
    // the option already shows a simple price; a tiered one needs its tiers spelt out
    $("model-price").textContent =
      model.pricing?.billing_mode === "tier" ? fmt.tierDetails(model.pricing) : (model.description ?? "");
  }
}

/** The open conversation in the address (`#c123`), so a reload or a bookmark comes back to it. */
function showInAddress(id) {
  const wanted = id === null ? location.pathname : `#c${id}`;
  if ((id === null && location.hash) || (id !== null && location.hash !== wanted)) history.replaceState(null, "", wanted);
}

/** The conversation the address names, if any. */
export function conversationInAddress() {
  const match = /^#c([1-9][0-9]*)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

/** Whether the reply being written may be stopped to show something else (asks when one is). */
export function mayLeaveReply() {
  return !state.stream || confirm("A reply is still being written. Stop it and leave this conversation?");
}

/** Show an empty chat; the conversation is created by the first reply. */
export function newChat() {
  stop();
  view += 1;
  showInAddress(null);
  state.currentId = null;
  state.messages = [];
  hideError();
  $("chat-title").textContent = "New chat";
  $("chat-totals").textContent = "";
  renderMessages();
}

/** Show a conversation; `quiet` when the address named it (one that is gone just gives a new chat). */
export async function openConversation(id, { quiet = false } = {}) {
  stop();
  const mine = ++view;
  let detail;
  try {
    detail = await api.conversation(id);
  } catch (error) {
    if (mine !== view) return;
    newChat();
    hooks.refreshList();
    if (quiet && error.status !== 401) return;
    return showError({ text: error.status === 404 ? "That conversation no longer exists." : error.message });
  }
  if (mine !== view) return;
  hideError();
  showInAddress(detail.id);
  state.currentId = detail.id;
  state.messages = detail.messages;
  showHeader(detail);
  renderMessages();
  // carry on with the model the conversation last used
  const last = detail.messages.findLast((m) => m.role === "assistant" && m.model_name)?.model_name;
  if (last && state.models.some((m) => m.name === last)) {
    $("model").value = last;
    showModelPrice();
  }
}

/** Update the title and totals when the list learns something new about the open conversation. */
export function showHeader(conversation) {
  if (!conversation || conversation.id !== state.currentId) return;
  $("chat-title").textContent = fmt.title(conversation.title);
  if (state.stream) return; // the totals count the reply being written only once it is recorded
  $("chat-totals").textContent =
    `${fmt.tokens(conversation.total_tokens)} (${fmt.number(conversation.total_input_tokens)} in, ` +
    `${fmt.number(conversation.total_output_tokens)} out) · ${fmt.money(conversation.bill)}`;
}

/** Leave the chat when its user signs out: stop the reply, empty the box and forget what was shown.
 * Returns what the user wrote and got no answer to (in the box, or sent and not answered yet). */
export function closeChat() {
  const typed = $("message").value;
  const unanswered = typed || (state.stream && !state.stream.started ? state.stream.text : "");
  stop();
  view += 1; // a late answer lands nowhere
  $("message").value = "";
  autosize();
  hideError();
  return unanswered;
}

export function stop() {
  state.stream?.controller.abort();
}

function setStreaming(on) {
  $("send-button").disabled = on;
  $("stop-button").disabled = !on;
  $("messages").setAttribute("aria-busy", String(on));
  if (!on && (document.activeElement === document.body || document.activeElement === $("stop-button"))) {
    $("message").focus();
  }
}

async function send() {
  if (state.stream) return;
  const box = $("message");
  const text = box.value;
  if (!text.trim()) return box.focus();
  if (!state.models.length) await loadModels();
  const model = $("model").value;
  if (!model) return showError({ text: "The model list could not be loaded, so nothing was sent. Try again." });
  hideError();

  // The API stores no context for us: the conversation so far goes with every request.
  const history = state.messages
    .filter((m) => m.content && ["system", "user", "assistant"].includes(m.role))
    .map(({ role, content }) => ({ role, content }));
  const body = { model, messages: [...history, { role: "user", content: text }], conversation_id: state.currentId };

  const mine = view;
  const userElement = appendMessage({ role: "user", content: text });
  const reply = appendReply();
  box.value = "";
  autosize();
  const controller = new AbortController();
  state.stream = { controller, text, started: false };
  setStreaming(true);
  let content = "";
  let started = false;
  try {
    const result = await streamChat({
      body,
      signal: controller.signal,
      onStart: (conversationId) => {
        started = true;
        if (state.stream) state.stream.started = true;
        if (conversationId && state.currentId === null && mine === view) {
          state.currentId = conversationId;
          showInAddress(conversationId);
          $("chat-title").textContent = fmt.title([...text].slice(0, 50).join("")); // as the server titles it
        }
        hooks.refreshList();
      },
      onDelta: (piece) => {
        content += piece;
        reply.update(content);
      },
    });
    const note = reply.finish(content, result, model);
    if (mine === view) {
      state.messages.push({ role: "user", content: text }, { role: "assistant", content, model_name: model, note });
    }
    scheduleRefresh(result.conversationId);
  } catch (error) {
    if (mine !== view) return;
    userElement.remove();
    reply.remove();
    if (!box.value) box.value = text; // nothing was answered: give the text back to send again
    autosize();
    if (error.name === "AbortError" && !started) {
      hooks.refreshList();
    } else if (error instanceof ApiError) {
      showError(explain(error));
    } else {
      showError({ text: "The connection to the server was lost before the reply started." });
    }
  } finally {
    if (!state.stream || state.stream.controller === controller) { // not a reply started since
      state.stream = null;
      setStreaming(false);
    }
  }
}

/** A clear sentence for each failure the chat can meet before any output (CONTRACT §2). */
function explain(error) {
  // matched by the server's own sentences (CONTRACT §2), not by any message that mentions a key
  if (error.status === 400 && /No DashScope API key is set/i.test(error.message)) {
    const text = state.me?.has_apikey
      ? "Your saved DashScope API key can no longer be read. Set it again in Settings."
      : "You have no DashScope API key yet. Add yours in Settings to start chatting.";
    return { text, settings: true };
  }
  if (error.status === 400 && /rejected by DashScope/i.test(error.message)) {
    return { text: "DashScope rejected your API key. Set a valid one in Settings.", settings: true };
  }
  if (error.status === 429) {
    return { text: "Too many requests: DashScope is throttling you. Wait a moment, then send again." };
  }
  if (error.status === 502 || error.status === 503) {
    // the server says which part failed (DashScope's own error, or a service that is down)
    const said = error.message || "The model service could not be reached.";
    return { text: /try again/i.test(said) ? said : `${said} Try again in a moment.` };
  }
  if (error.status === 504) return { text: "The model service (DashScope) took too long to answer. Try again." };
  if (error.status === 404) {
    newChat();
    hooks.refreshList();
    return { text: "That conversation no longer exists. Your message is back in the box: send it as a new chat." };
  }
  return { text: error.message };
}

function scheduleRefresh(conversationId) {
  if (!conversationId) return;
  for (const delay of REFRESH_DELAYS_MS) {
    setTimeout(() => refreshConversation(conversationId), delay);
  }
}

async function refreshConversation(id) {
  await hooks.refreshList();
  if (state.currentId !== id || state.stream) return;
  try {
    const detail = await api.conversation(id);
    if (state.currentId !== id || state.stream) return;
    showHeader(detail);
    // Replace what was drawn locally once the server holds at least as much (with tokens and models).
    if (detail.messages.length >= state.messages.length) {
      // keep what only this page knows: that a reply was stopped or cut short
      state.messages.forEach((local, i) => {
        if (local.note && detail.messages[i]?.role === local.role) detail.messages[i].note = local.note;
      });
      state.messages = detail.messages;
      renderMessages();
    }
  } catch {
    // deleted meanwhile, or offline: the next action shows it
  }
}

function showError({ text, settings = false }) {
  $("chat-error-text").textContent = text;
  $("chat-error-settings").hidden = !settings;
  $("chat-error").hidden = false;
}

export function hideError() {
  $("chat-error").hidden = true;
}

// ---- drawing messages

const emptyState = $("messages-empty");

export function renderMessages() {
  const log = $("messages");
  log.replaceChildren();
  if (state.messages.length === 0) log.append(emptyState);
  for (const message of state.messages) appendMessage(message);
  log.scrollTop = log.scrollHeight;
}

function appendMessage(message) {
  emptyState.remove();
  const element = document.createElement("div");
  element.className = `msg ${message.role}`;
  if (message.role === "assistant") {
    const body = document.createElement("div");
    body.className = "markdown";
    renderMarkdown(body, message.content);
    element.append(body, meta(assistantMeta(message), Boolean(message.note)));
  } else {
    element.textContent = message.role === "system" ? `System: ${message.content}` : message.content;
  }
  $("messages").append(element);
  scrollToEnd(true);
  return element;
}

function assistantMeta(message) {
  const parts = [message.model_name];
  if (message.output_tokens) parts.push(fmt.tokens(message.output_tokens));
  if (message.note) parts.push(message.note);
  return parts.filter(Boolean).join(" · ");
}

function meta(text, warn = false) {
  const line = document.createElement("p");
  line.className = warn ? "msg-meta warn" : "msg-meta";
  line.textContent = text;
  return line;
}

/** The reply being streamed: drawn at most once a frame, however fast the pieces arrive. */
function appendReply() {
  const element = document.createElement("div");
  element.className = "msg assistant";
  element.setAttribute("aria-busy", "true");
  const body = document.createElement("div");
  body.className = "markdown typing";
  element.append(body);
  emptyState.remove();
  $("messages").append(element);
  scrollToEnd(true);
  let pending = null;
  let frame = 0;
  const draw = () => {
    frame = 0;
    const stick = nearEnd();
    body.classList.remove("typing");
    renderMarkdown(body, pending);
    scrollToEnd(stick);
  };
  return {
    update(text) {
      pending = text;
      if (!frame) frame = requestAnimationFrame(draw);
    },
    finish(text, result, model) {
      if (frame) cancelAnimationFrame(frame);
      pending = text;
      draw();
      element.removeAttribute("aria-busy");
      if (!text) body.textContent = "(no reply)";
      let note = null;
      if (result.error) note = `The reply was cut short: ${result.error.message} (${result.error.code}).`;
      else if (result.stopped) note = "Stopped. The partial reply is kept.";
      else if (result.finishReason === "length") note = "Cut at the token limit.";
      element.append(meta([model, note].filter(Boolean).join(" · "), Boolean(note)));
      return note;
    },
    remove() {
      if (frame) cancelAnimationFrame(frame);
      element.remove();
      if (state.messages.length === 0 && !$("messages").children.length) $("messages").append(emptyState);
    },
  };
}

function nearEnd() {
  const log = $("messages");
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function scrollToEnd(stick) {
  if (stick) $("messages").scrollTop = $("messages").scrollHeight;
}

function autosize() {
  const box = $("message");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight + 2, 192)}px`;
}
