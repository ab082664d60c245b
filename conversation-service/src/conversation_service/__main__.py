"""`python -m conversation_service`: serve conversation-service on its port."""

from shared.run import serve

from conversation_service.main import SERVICE_NAME, create_app

serve(create_app, name=SERVICE_NAME)
