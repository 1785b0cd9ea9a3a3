"""How requests reach the model: a queue owned by the worker, admission by the time the
work ahead will take, and forward passes cut by length within a padded-token budget.
Importable and testable without BentoML (refit's counterpart of TEI's `queue.rs`)."""
