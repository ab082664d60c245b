// The conversation list (newest first, with tokens and bill), and renaming and deleting one.

import { api, describeValidation } from "./api.js";
import * as fmt from "./format.js";
import { $, state } from "./state.js";

let hooks = { open: () => {}, deleted: () => {}, renamed: () => {} };
let target = null; // the conversation the rename or delete dialog is about

const ICONS = {
  rename:
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4Z"/></svg>',
  delete:
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M3 6h18"/><path d="M8 6V4h8v2"/><path d="M19 6l-1 14H6L5 6"/></svg>',
};

export function initConversations(options) {
  hooks = { ...hooks, ...options };
  $("rename-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await rename();
  });
  $("rename-cancel").addEventListener("click", () => $("rename-dialog").close());
  $("delete-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await remove();
  });
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
  $("conversation-more").addEventListener("click", async () => {
    state.conversationsShown = Math.max(state.conversationsShown, PAGE_SIZE) + PAGE_SIZE;
    await refreshList();
  });
}

const PAGE_SIZE = 200; // the API's largest page
let refreshes = 0; // bumped by each refresh, so an earlier one finishing late changes nothing

/** Fetch the list again (as many pages as are shown) and redraw it; returns the open conversation's
 * row, if listed. */
export async function refreshList() {
  const mine = ++refreshes;
  try {
    const wanted = Math.max(state.conversationsShown, PAGE_SIZE);
    const byId = new Map(); // a conversation that moved to the top between two pages is listed once
    let total = 0;
    let offset = 0;
    while (offset < wanted) {
      const page = await api.conversationPage(PAGE_SIZE, offset);
      for (const conversation of page.items) if (!byId.has(conversation.id)) byId.set(conversation.id, conversation);
      total = page.total;
      offset += PAGE_SIZE;
      if (page.items.length < PAGE_SIZE) break;
    }
    if (mine === refreshes) { // a later refresh (or "Show more") has the last word
      state.conversations = [...byId.values()];
      state.conversationsTotal = total;
      renderList();
    }
  } catch {
    // a 401 signs out by itself; otherwise keep the list as it is
  }
  return state.conversations.find((c) => c.id === state.currentId) ?? null;
}

export function renderList() {
  const list = $("conversation-list");
  // keep focus on the same control across a redraw (the list refreshes after every reply)
  const focused = document.activeElement?.closest?.("#conversation-list li");
  const focusKey = focused ? [focused.dataset.id, document.activeElement.dataset.action] : null;
  list.replaceChildren(...state.conversations.map(item));
  $("conversation-empty").hidden = state.conversations.length > 0;
  const more = state.conversationsTotal - state.conversations.length;
  $("conversation-more").hidden = more <= 0;
  $("conversation-more").textContent = `Show more (${more} older)`;
  if (focusKey) {
    list.querySelector(`li[data-id="${focusKey[0]}"] [data-action="${focusKey[1]}"]`)?.focus();
  }
}

function item(conversation) {
  const li = document.createElement("li");
  li.dataset.id = conversation.id;
  if (conversation.id === state.currentId) li.setAttribute("aria-current", "page");

  const open = document.createElement("button");
  open.type = "button";
  open.className = "conv-open";
  open.dataset.action = "open";
  const title = document.createElement("span");
  title.className = "conv-title";
  title.textContent = fmt.title(conversation.title);
  const details = document.createElement("span");
  details.className = "conv-meta";
  details.textContent = `${fmt.tokens(conversation.total_tokens)} · ${fmt.money(conversation.bill)}`;
  open.append(title, details);
  open.addEventListener("click", () => hooks.open(conversation.id));

  const actions = document.createElement("span");
  actions.className = "conv-actions";
  actions.append(
    iconButton("rename", `Rename conversation ${fmt.title(conversation.title)}`, () => openRename(conversation)),
    iconButton("delete", `Delete conversation ${fmt.title(conversation.title)}`, () => openDelete(conversation)),
  );
  li.append(open, actions);
  return li;
}

function iconButton(action, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "icon";
  button.dataset.action = action;
  button.setAttribute("aria-label", label);
  button.title = label;
  button.innerHTML = ICONS[action]; // a constant of this file, never user or model text
  button.addEventListener("click", onClick);
  return button;
}

function openRename(conversation) {
  target = conversation;
  $("rename-input").value = conversation.title;
  $("rename-error").hidden = true;
  $("rename-dialog").showModal();
  $("rename-input").select();
}

async function rename() {
  const title = $("rename-input").value.trim();
  if (!title) return showRenameError("A title cannot be empty.");
  try {
    const updated = await api.rename(target.id, title);
    $("rename-dialog").close();
    hooks.renamed(updated);
    await refreshList();
  } catch (error) {
    showRenameError(describeValidation(error));
  }
}

function showRenameError(text) {
  $("rename-error").textContent = text;
  $("rename-error").hidden = false;
}

function openDelete(conversation) {
  target = conversation;
  $("delete-text").textContent = `“${fmt.title(conversation.title)}” and all its messages will be deleted. This cannot be undone.`;
  $("delete-dialog").showModal();
  $("delete-cancel").focus(); // the safe choice is the default one
}

async function remove() {
  const { id } = target;
  try {
    await api.remove(id);
  } catch (error) {
    if (error.status !== 404) {
      $("delete-text").textContent = error.message;
      return;
    }
  }
  $("delete-dialog").close();
  state.conversations = state.conversations.filter((c) => c.id !== id);
  renderList();
  hooks.deleted(id);
  await refreshList();
}
