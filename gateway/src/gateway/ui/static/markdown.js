// Model output is untrusted: it is parsed as Markdown, then always sanitised before it reaches the DOM.

import { Marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.js";

const marked = new Marked({ gfm: true, breaks: true, async: false });

// Links open in a new tab without handing over this page; images are dropped so a reply cannot make
// the browser fetch from the internet (a tracking pixel, say).
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["img", "picture", "video", "audio", "source", "style", "form", "input", "button", "textarea", "select"],
  // `id` and `name` would let a reply take the place of the page's own elements (`getElementById`)
  FORBID_ATTR: ["style", "id", "name"],
  RETURN_DOM_FRAGMENT: true,
};

/** Render Markdown into `element`, replacing what it held. */
export function renderMarkdown(element, text) {
  const html = marked.parse(text);
  element.replaceChildren(DOMPurify.sanitize(html, PURIFY_OPTIONS));
}
