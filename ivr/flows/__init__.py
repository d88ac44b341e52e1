"""Call flows: YAML files in dialplans/ → validated, immutable Flow objects, and the engine that runs them."""
