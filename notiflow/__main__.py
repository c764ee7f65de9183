from notiflow.cli import app

app()
