"""`python -m billing_service`: serve billing-service on its port."""

from shared.run import serve

from billing_service.main import SERVICE_NAME, create_app

serve(create_app, name=SERVICE_NAME)
