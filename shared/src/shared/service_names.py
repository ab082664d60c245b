"""Each process's name: its internal credentials name the caller and the audience by it, so a name
spelled differently on the two sides of a call would make every such call a 401."""

from __future__ import annotations

GATEWAY = "gateway"
LLM_SERVICE = "llm-service"
CONVERSATION_SERVICE = "conversation-service"
BILLING_SERVICE = "billing-service"
