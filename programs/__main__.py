from programs.cli import app

app()
