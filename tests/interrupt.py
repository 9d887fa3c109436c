"""A callback that interrupts a run as Ctrl-C would, shared by the resume tests."""

from trainlab.train import Callback


class Interrupt(Callback):
    """Raises KeyboardInterrupt at the end of optimizer step ``at``."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            raise KeyboardInterrupt
