"""What a runner may use during a run: the RunContext (clock, seeded random and ids, recorded
HTTP, decision trace, artifacts) and the environment that makes a run replayable."""
