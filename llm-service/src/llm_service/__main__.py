"""`python -m llm_service`: serve llm-service on its port."""

from shared.run import serve

from llm_service.main import SERVICE_NAME, create_app

serve(create_app, name=SERVICE_NAME)
