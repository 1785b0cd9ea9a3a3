"""Every place refit relies on a dependency's internals, each module naming the versions
it was written for and failing loudly on others (pandas' `compat` is the model)."""
