"""Around one invocation, whatever the platform: the id scope events derive their ids from,
the flush policy, the deadline watch, and the engine every platform wrapper calls."""
