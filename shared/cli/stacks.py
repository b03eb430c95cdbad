"""Which stack a run-like command (`run`, `eval`) works on, and the one line that says so."""
from __future__ import annotations

import contextlib
import sys

from shared.ops import stack
from shared.runtime.config import Settings

EMBEDDED_HELP = ("a stack of this command's own (broker, PostgreSQL with a copy of `turnforge up`'s data, model, "
                 "services) on free ports, stopped when the command ends; attaches instead to a running "
                 "`turnforge up` stack that has the same settings")


def note(text: str) -> None:
    """A line about what the command does besides its work (which stack it uses), on stderr."""
    print(text, file=sys.stderr, flush=True)


def stack_for(settings: Settings, embedded: bool, command: str, *, model: bool = True
              ) -> contextlib.AbstractContextManager[Settings]:
    """The settings the command works with: those of its own embedded stack (or of `turnforge up`'s, attached to),
    or the configured ones, whose broker, PostgreSQL and local model (unless `model` is False: none is called) must
    answer within seconds."""
    if embedded:
        return stack.embedded(settings, command, with_model=model, say=note)
    stack.require_reachable(settings, model=model)
    note(f"using {stack.addresses(settings)} (not started by this command)")
    return contextlib.nullcontext(settings)
