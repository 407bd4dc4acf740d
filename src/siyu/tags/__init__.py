"""Tags: tag groups and tags (like WeCom corporate tags) and the tags customers carry, with their source."""
