"""The web service and its page: the FastAPI app (`app`), admission and limits (`guard`), uploads (`uploads`), responses (`payload`) and the page (`static/`)."""
