"""Every view: importing this registers them all (registry.VIEWS), in the order the
front doors list them. A new view is one module under views/ and one line here."""
from . import goroutines, goroutine, stacks, maps, mapwatch, threads, version  # noqa: F401
from . import sched  # noqa: F401
from . import gc  # noqa: F401
from . import chans  # noqa: F401
from . import pprof  # noqa: F401
from . import dump  # noqa: F401
from . import xref  # noqa: F401
from . import trace  # noqa: F401
from . import heap  # noqa: F401
from .registry import VIEWS  # noqa: F401
