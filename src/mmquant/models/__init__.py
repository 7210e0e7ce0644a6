"""mmquant's models; importing this package does not register them (``mmquant/__init__`` does, via ``auto``)."""
