"""What every layer shares: the settings base, the error hierarchy, the model registry and
store, the inference engine, and (`core.compat`) every patch of a dependency's internals.
"""
