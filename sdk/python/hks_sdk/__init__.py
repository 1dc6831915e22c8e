"""Python SDK of HKS Functions (hksd's internal operations API). Standard library only.

    from hks_sdk import Client
    r = Client().functions.execute("print('hi')")
    print(r.ok, r.stdout)
"""

from .client import Client, Functions
from .errors import HksAuthError, HksConnectionError, HksError, HksRateLimited
from .models import ExecutionResult

__version__ = "0.1.0"

__all__ = ["Client", "Functions", "ExecutionResult", "HksError", "HksAuthError", "HksRateLimited",
           "HksConnectionError", "__version__"]
