"""The web page's static files (`static/`), served by ffpool.server.web; no Python code."""
