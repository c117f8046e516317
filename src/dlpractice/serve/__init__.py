"""`dlp serve`: one finished run behind a JSON endpoint (FastAPI) and a web page (Gradio) on one server.

app.py builds the app from the lab's serving spec (dlpractice.serving) and starts it, grouping concurrent
requests into one model call with dlpractice.batcher (below the labs, so lab p2 measures the same code);
ui.py is the Gradio page with the run's failure cases.
"""
