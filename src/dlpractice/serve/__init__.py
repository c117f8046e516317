"""`dlp serve`: one finished run behind a JSON endpoint (FastAPI) and a web page (Gradio) on one server.

batcher.py groups concurrent requests into one model call; app.py builds the app from the lab's serving
spec (dlpractice.serving) and starts it; ui.py is the Gradio page with the run's failure cases.
"""
