"""`python -m conversation_service`: serve conversation-service on its port."""

from shared.run import serve

from conversation_service.main import create_app

serve(create_app, name="conversation-service")
