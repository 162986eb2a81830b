"""The runtime: the Engine, instances, deadlines, actions and the transitions adapter."""
