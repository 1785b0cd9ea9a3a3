"""The retraining loop: trigger policy, challenger training, shadow replay, the gate, the
schedule and its audit log."""
