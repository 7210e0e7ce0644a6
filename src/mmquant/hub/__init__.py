"""Hub publishing: cards generated from data, publishing helpers, and a local hub server for tests."""
