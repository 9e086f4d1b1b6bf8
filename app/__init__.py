"""FastAPI scoring service: loads the model store, scores images, keeps an inspection log."""
