"""Use cases: each function owns its transaction; views and tasks both call them."""
