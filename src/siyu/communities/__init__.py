"""Communities (社群 / 客户群): customer groups with members matched to the pool, tags, group live codes and figures."""
