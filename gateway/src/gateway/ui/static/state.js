// The page's state, in one place. Modules read it and change it; the DOM is redrawn from it.

export const state = {
  me: null, // GET /api/users/me
  models: [], // GET /api/llm/models
  conversations: [], // GET /api/conversations, newest first
  currentId: null, // the open conversation, or null for a new chat
  messages: [], // the open conversation's messages ({role, content, ...})
  stream: null, // {controller} while a reply streams
};

export function resetState() {
  state.stream?.controller.abort();
  Object.assign(state, { me: null, models: [], conversations: [], currentId: null, messages: [], stream: null });
}

export const $ = (id) => document.getElementById(id);
