"""`python -m gateway`: serve gateway on its port."""

from shared.run import serve

from gateway.main import SERVICE_NAME, create_app

serve(create_app, name=SERVICE_NAME)
