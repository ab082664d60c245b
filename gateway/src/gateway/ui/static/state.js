// The page's state, in one place. Modules read it and change it; the DOM is redrawn from it.

export const state = {
  me: null, // GET /api/users/me
  models: [], // GET /api/llm/models
  conversations: [], // GET /api/conversations, newest first
  conversationsTotal: 0, // X-Total-Count: how many the user has in all
  conversationsShown: 0, // how many the list asks for (pages of 200; "Show more" adds a page)
  currentId: null, // the open conversation, or null for a new chat
  messages: [], // the open conversation's messages ({role, content, ...})
  stream: null, // {controller, text, started} while a reply is being sent or streams
};

export function resetState() {
  state.stream?.controller.abort();
  Object.assign(state, {
    me: null,
    models: [],
    conversations: [],
    conversationsTotal: 0,
    conversationsShown: 0,
    currentId: null,
    messages: [],
    stream: null,
  });
}

export const $ = (id) => document.getElementById(id);
