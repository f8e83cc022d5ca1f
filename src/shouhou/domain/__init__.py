"""The pure core: values, aggregates, the transition table and decisions. Stdlib only."""
