"""Python SDK of HKS Functions (hksd's internal operations API). Standard library only.

    import hks_sdk
    print(hks_sdk.functions.execute(code="print('hi')").stdout)   # $HKS_URL, $HKS_TOKEN

    from hks_sdk import Client
    client = Client()
    r = client.functions.execute("print('hi')")
    print(r.ok, r.stdout)

    with client.functions.temporary(code=HANDLER) as fn:   # deleted when the block ends
        print(fn.url, fn.invoke({"x": 1}).json())

    cj = client.cronjobs.create("nightly", "30 2 * * *",       # a command over fn's code
                                task=TaskSpec(template=fn, command=["python3", "job.py"]))
    print(cj.next_run_at, cj.trigger(wait=True).logs)
"""

from . import functions
from .client import Client, Functions, LogStream, pack_directory, parse_ttl
from .cron import CronJob, CronJobRun, CronJobs, TaskSpec
from .errors import (AuthError, Conflict, ExecutionTimeout, HksAuthError, HksConnectionError,
                     HksError, HksFunctionError, HksNotFound, HksRateLimited, HksTimeout, HksUnavailable,
                     InvalidRequest, NotFound, PermissionDenied, RateLimited, ServerError)
from .models import ExecutionResult, Function, InvocationResult
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = ["Client", "Functions", "functions", "Function", "ExecutionResult", "InvocationResult",
           "CronJobs", "CronJob", "CronJobRun", "TaskSpec",
           "HksError", "HksAuthError", "HksNotFound", "HksRateLimited", "HksFunctionError",
           "HksUnavailable", "HksTimeout", "HksConnectionError", "AuthError", "PermissionDenied",
           "NotFound", "InvalidRequest", "Conflict", "RateLimited", "ExecutionTimeout", "ServerError",
           "LogStream", "pack_directory", "parse_ttl", "RetryPolicy", "__version__"]
