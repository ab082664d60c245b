"""`python -m gateway`: serve gateway on its port."""

from shared.run import serve

from gateway.main import create_app

serve(create_app, name="gateway")
