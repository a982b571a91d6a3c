from .distillers import *  # noqa: F403
from .losses import *  # noqa: F403
from .projectors import *  # noqa: F403
