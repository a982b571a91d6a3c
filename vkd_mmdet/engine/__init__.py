from .hooks import *  # noqa: F403
from .optim_wrappers import *  # noqa: F403
