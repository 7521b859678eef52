"""Route groups served by one handler on both trees, and what both trees of an area share."""
