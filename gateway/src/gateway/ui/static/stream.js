// POST /api/llm/chat with `stream: true`, read as server-sent events from a streamed fetch body
// (EventSource cannot POST). Frames: `data: {"content", "finish_reason", "usage", "error"?}` … `data: [DONE]`.

import { authHeaders, errorFrom } from "./api.js";

/**
 * Stream one reply. `onStart(conversationId)` runs once the 200 arrives, `onDelta(text)` for each piece.
 * Resolves to {finishReason, usage, error, stopped}; a non-200 answer rejects with an ApiError.
 * Aborting `signal` ends the stream (the server keeps and bills the partial reply).
 */
export async function streamChat({ body, signal, onStart, onDelta }) {
  const response = await fetch("/api/llm/chat", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  const conversationId = Number(response.headers.get("X-Conversation-Id")) || null;
  onStart(conversationId);

  const result = { conversationId, finishReason: null, usage: null, error: null, stopped: false };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (handleFrame(frame, result, onDelta) === "done") return result;
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
    result.stopped = true;
  }
  return result;
}

/** Apply one SSE frame to the result; returns "done" on `data: [DONE]`. */
function handleFrame(frame, result, onDelta) {
  const data = frame
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n");
  if (!data) return null; // a comment or keep-alive
  if (data === "[DONE]") return "done";
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return null;
  }
  if (event.content) onDelta(event.content);
  if (event.usage) result.usage = event.usage;
  if (event.finish_reason) result.finishReason = event.finish_reason;
  if (event.finish_reason === "error") {
    result.error = event.error ?? { code: "Error", message: "The reply failed." };
  }
  return null;
}
