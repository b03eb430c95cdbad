"""The review page (`turnforge view`): one self-contained HTML file to read a dataset before training on it."""
from shared.run.review.page import PAGE_NAME, build_page, read_inputs, serve, write_page

__all__ = ["PAGE_NAME", "build_page", "read_inputs", "serve", "write_page"]
