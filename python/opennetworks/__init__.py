"""opennetworks: onetdp's collectives from Python (ctypes over libonet.so).

    import numpy as np, opennetworks as on
    with on.Communicator() as comm:          # rank/size/master from the environment
        y = comm.allreduce(np.ones(4, np.float32))

    import torch.distributed as dist
    import opennetworks                       # registers the "onet" backend
    dist.init_process_group("onet")           # under torchrun

See python/README.md. libonet.so is found through $ONET_LIB, the package
directory, or the checkout's build/libonet.so (`make libonet`).
"""

import importlib.util as _ilu
import os as _os

from ._lib import (  # noqa: F401
    Aborted,
    Closed,
    InternalError,
    InvalidArgument,
    LibraryNotFound,
    NotSupported,
    OnetError,
    PeerLost,
    Timeout,
    version,
)
from .communicator import Communicator, Request  # noqa: F401
from .ops import (  # noqa: F401
    JAXCollectiveOps,
    NumPyCollectiveOps,
    PyTorchCollectiveOps,
    get_collective_ops,
    get_default_communicator,
    init,
    shutdown,
)

__version__ = "0.1.0"

# Register the torch.distributed backend when torch is installed (set
# ONET_NO_TORCH=1 to skip importing torch here).
if not _os.environ.get("ONET_NO_TORCH") and _ilu.find_spec("torch") is not None:
    try:
        from . import torch_backend  # noqa: F401
    except ImportError:  # torch without distributed support
        pass
