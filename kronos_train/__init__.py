"""kronos_train: the engine behind kronos-tui.

Light modules (no torch): config, events, runfolder, checks, launch, gpu, data.
Heavy modules (torch): model, train, evaluate.
"""
__version__ = "0.1.0"
